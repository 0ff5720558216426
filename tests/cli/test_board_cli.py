"""``deployctl board`` from the CLI: the page is written and its path printed, ``--markdown`` prints Markdown on
stdout (CI job summaries), ``-o json`` keeps the contract, and environments that cannot be reached (here: AWS
refuses connections) are shown with why while the command still succeeds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.cli.conftest import Invoke

UNREACHABLE = "http://127.0.0.1:9"


@pytest.fixture
def unreachable(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The reference configuration with every AWS endpoint refusing connections (and credentials to try)."""
    config = project / "pyproject.toml"
    text, count = re.subn(r"(aws = \{[^}]*?) \}", rf'\1, endpoint_url = "{UNREACHABLE}" }}', config.read_text())
    assert count == 3
    config.write_text(text)
    for key, value in (
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ):
        monkeypatch.setenv(key, value)
    return project


def test_the_page_is_written_and_unreachable_environments_say_why(invoke: Invoke, unreachable: Path) -> None:
    result = invoke("board")
    assert result.code == 0, result.err
    page = unreachable / ".deployctl" / "board.html"
    lines = result.out.splitlines()
    assert lines[0] == f"board written: {page}"
    # dev's aws.role_arn (the way into dev's account from another): which account the caller is in is asked first
    assert lines[1].startswith("  dev: history and cluster unreadable: check which AWS account the credentials")
    assert "127.0.0.1:9 not reachable" in lines[1]
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count('data-state="unreachable"') == 4  # 2 apps x 2 envs


def test_markdown_goes_to_stdout_for_job_summaries(invoke: Invoke, unreachable: Path) -> None:
    result = invoke("board", "--markdown", "--env", "prod", "--limit", "3")
    assert result.code == 0, result.err
    assert result.out.startswith("## Release board\n")
    assert "| app | prod |" in result.out
    assert "| api | ⚠️ - · unreachable (below: why) |" in result.out
    assert all(not line or line[0] in "#|->_N" for line in result.out.splitlines()), "stdout: Markdown only"
    assert "retry" in result.err  # the AWS retries are progress, on stderr
    assert not (unreachable / ".deployctl" / "board.html").exists()


@pytest.mark.usefixtures("unreachable")
def test_json_contract(invoke: Invoke, tmp_path: Path) -> None:
    out = tmp_path / "site" / "index.html"
    document = invoke("-o", "json", "board", "--out", str(out)).json()
    assert (document["schema"], document["command"], document["ok"]) == ("deployctl/v1", "board", True)
    assert {"path", "generated_at", "apps", "environments", "waiting", "notes"} <= set(document)
    assert document["path"] == str(out) and out.is_file()
    assert document["apps"] == ["api", "worker"]  # in needs order
    dev = document["environments"][0]
    assert {"env", "promote_from", "freeze", "frozen", "problem", "apps", "timeline"} <= set(dev)
    assert dev["apps"][0]["state"] == "unreachable"
    assert {
        "env",
        "app",
        "state",
        "release",
        "digest",
        "commit",
        "deployed_at",
        "deployed_by",
        "verdict",
        "drift",
    } <= set(dev["apps"][0])


def test_a_terraform_only_environment_is_refused(invoke: Invoke) -> None:
    result = invoke("board", "--env", "shared")
    assert result.code == 2
    assert "environment 'shared' has no cluster" in result.err
