"""``deployctl deploy`` with a broken values file: exit 2 with one message that says where and how to fix it, before
anything is read from a registry, a cluster or AWS (the reference configuration: apps ``api`` and ``worker``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Invoke

GOOD = "api:\n  replicaCount: 1\nworker:\n  replicas: 1\n"


@pytest.mark.parametrize(
    ("text", "said"),
    [
        (
            GOOD + "wroker:\n  replicas: 2\n",
            "values-dev.yaml: section 'wroker' matches no app (did you mean 'worker'?)",
        ),
        (
            "api:\n  replicaCount: 1\n image: x\n",
            "values-dev.yaml:3:2: invalid YAML: expected <block end>, but found '<block mapping start>' "
            "(while parsing a block mapping that starts at line 1)",
        ),
    ],
    ids=["a section that matches no app", "a YAML syntax error"],
)
def test_deploy_with_a_broken_values_file_exits_2_saying_where(
    invoke: Invoke, project: Path, text: str, said: str
) -> None:
    (project / "values-dev.yaml").write_text(text)
    result = invoke("deploy", "dev")
    assert result.code == 2, result.err
    assert said in result.err
    assert "Traceback" not in result.err
    assert result.out == ""


def test_the_same_file_fixed_gets_past_the_values_check(invoke: Invoke, project: Path) -> None:
    """The control: the good file is not refused for its values (the deploy then stops later, at git: the project
    is no repository)."""
    (project / "values-dev.yaml").write_text(GOOD)
    result = invoke("deploy", "dev")
    assert result.code != 0
    assert "values-dev.yaml" not in result.err
