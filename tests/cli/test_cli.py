"""The CLI's contract: exit codes, stdout vs stderr, JSON documents, no tracebacks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from deployctl import __version__
from tests.cli.conftest import REPO, Invoke

SCHEMA = "deployctl/v1"


def test_help_lists_commands(invoke: Invoke) -> None:
    result = invoke("--help")
    assert result.code == 0
    assert "config" in result.out and "doctor" in result.out


def test_version(invoke: Invoke) -> None:
    result = invoke("--version")
    assert result.code == 0
    assert result.out.strip() == f"deployctl {__version__}"


def test_config_show_one_environment_text(invoke: Invoke) -> None:
    result = invoke("config", "show", "prod")
    assert result.code == 0
    assert "[environments.prod]" in result.out
    assert "promote_from = dev" in result.out
    assert "[environments.dev]" not in result.out
    assert result.err == ""


def test_config_show_json_contract(invoke: Invoke) -> None:
    result = invoke("--output", "json", "config", "show")
    assert result.code == 0
    document = result.json()
    assert set(document) == {"schema", "command", "ok", "path", "environments", "apps"}
    assert document["schema"] == SCHEMA
    assert document["command"] == "config show"
    assert document["ok"] is True
    assert set(document["environments"]) == {"shared", "dev", "prod"}
    assert set(document["environments"]["prod"]) >= {
        "aws",
        "cluster",
        "namespace",
        "values",
        "promote_from",
        "protected",
    }


def test_unknown_environment_exits_2_listing_known(invoke: Invoke) -> None:
    result = invoke("config", "show", "nosuchenv")
    assert result.code == 2
    assert result.out == ""
    assert "unknown environment 'nosuchenv'" in result.err
    assert "known environments: shared, dev, prod" in result.err
    assert "Traceback" not in result.err


def test_unknown_environment_json_error_document(invoke: Invoke) -> None:
    result = invoke("-o", "json", "config", "show", "nosuchenv")
    assert result.code == 2
    document = result.json()
    assert document["schema"] == SCHEMA
    assert document["ok"] is False
    assert document["error"]["exit_code"] == 2
    assert "nosuchenv" in document["error"]["message"]


def test_misspelled_key_exits_2_with_suggestion(invoke: Invoke, project: Path) -> None:
    config = project / "pyproject.toml"
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('namespace = "api"\nvalues = "values-prod.yaml"', 'namspace = "api"\nvalues = "values-prod.yaml"')
    )
    result = invoke("config", "show")
    assert result.code == 2
    assert (
        "pyproject.toml: tool.deployctl.environments.prod.namspace: unknown key (did you mean 'namespace'?)"
        in result.err
    )
    assert "Traceback" not in result.err


def test_config_option_and_env_var(
    invoke: Invoke, project: Path, tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "deploy.toml"
    elsewhere.write_text((project / "pyproject.toml").read_text().replace('"deployctl-prod"', '"api-other"'))
    assert "cluster.eks = api-other" in invoke("--config", str(elsewhere), "config", "show", "prod").out
    monkeypatch.setenv("DEPLOYCTL_CONFIG", str(elsewhere))
    assert "cluster.eks = api-other" in invoke("config", "show", "prod").out
    missing = invoke("--config", str(elsewhere) + ".missing", "config", "show")
    assert missing.code == 2
    assert "configuration file not found" in missing.err


def test_no_config_found_is_a_usage_error(invoke: Invoke, project: Path) -> None:
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    result = invoke("config", "show")
    assert result.code == 2
    assert "no pyproject.toml with a [tool.deployctl] table" in result.err


def test_bad_option_is_usage_error_without_traceback(invoke: Invoke) -> None:
    result = invoke("--output", "yaml", "config", "show")
    assert result.code == 2
    assert "Traceback" not in result.err


def test_doctor_json_contract(invoke: Invoke) -> None:
    result = invoke("-o", "json", "doctor")
    document = result.json()
    assert set(document) == {"schema", "command", "ok", "healthy", "tools", "environments"}
    assert [t["name"] for t in document["tools"]] == ["terraform", "helm", "kubectl"]
    assert set(document["tools"][0]) == {"name", "found", "version", "minimum", "ok", "note"}
    assert [e["name"] for e in document["environments"]] == ["shared", "dev", "prod"]
    assert set(document["environments"][0]) == {"name", "endpoint", "reachable", "note"}
    tools_ok = all(t["ok"] for t in document["tools"])
    reachable = all(e["reachable"] for e in document["environments"])
    assert result.code == (2 if not tools_ok else 0 if reachable else 1)
    assert document["ok"] is document["healthy"] is (result.code == 0)


def test_doctor_reports_missing_tools(invoke: Invoke, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # and no tools installed by `make setup`
    result = invoke("doctor", "--no-config")
    assert result.code == 2, "a missing tool is exit 2, as for any command that needs it (README: Exit codes)"
    assert "terraform" in result.out and "not found" in result.out


def _closed_endpoints(project: Path) -> None:
    """Every environment's AWS endpoint on a closed local port (nothing listens on the discard port)."""
    config = project / "pyproject.toml"
    text = re.sub(r"(aws = \{[^}]*?) \}", r'\1, endpoint_url = "http://127.0.0.1:9" }', config.read_text())
    config.write_text(text)


def _tools_ok(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Stand-ins for terraform, helm and kubectl that print a recent version: this test is about the endpoints, and
    the machine running it may lack a tool (which would be exit 2)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    versions = {
        "terraform": '{"terraform_version": "1.10.5"}',
        "helm": "v3.17.0",
        "kubectl": '{"clientVersion": {"gitVersion": "v1.31.0"}}',
    }
    for tool, output in versions.items():
        script = bin_dir / tool
        script.write_text(f"#!/bin/sh\necho '{output}'\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no tools installed by `make setup`


def test_doctor_with_unreachable_endpoints_exits_1_and_is_not_ok(
    invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _closed_endpoints(project)
    _tools_ok(monkeypatch, tmp_path)
    result = invoke("-o", "json", "doctor")
    assert result.code == 1, result.err
    document = result.json()
    assert document["ok"] is False and document["healthy"] is False
    assert all(t["ok"] for t in document["tools"])
    for env in document["environments"]:
        assert (env["endpoint"], env["reachable"]) == ("http://127.0.0.1:9", False), env["name"]
        assert "unreachable" in env["note"]
    text = invoke("doctor")
    assert text.code == 1
    assert "BAD dev" in text.out and "unreachable" in text.out


def test_doctor_all_good_exits_0(
    invoke: Invoke, project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import socket

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        config = project / "pyproject.toml"
        config.write_text(
            re.sub(
                r"(aws = \{[^}]*?) \}",
                rf'\1, endpoint_url = "http://127.0.0.1:{port}" }}',
                config.read_text(),
            )
        )
        _tools_ok(monkeypatch, tmp_path)
        result = invoke("-o", "json", "doctor")
    assert result.code == 0, result.out
    assert result.json()["ok"] is True


@pytest.mark.parametrize("args", [["--help"], ["deploy", "--help"], ["sandbox", "mark", "--help"], ["plan", "--help"]])
def test_help_does_not_import_heavy_libraries(args: list[str]) -> None:
    code = (
        "import sys\n"
        "from deployctl.cli.main import main\n"
        f"rc = main({args!r})\n"
        "heavy = sorted(m for m in ('boto3', 'botocore', 'kubernetes', 'pydantic') if m in sys.modules)\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_ci_steps_json_contract(invoke: Invoke) -> None:
    result = invoke("-o", "json", "ci", "steps", "--event", "push", "--ref", "refs/tags/release-1.4.0")
    assert result.code == 0
    document = result.json()
    assert set(document) == {
        "schema",
        "command",
        "ok",
        "event",
        "ref",
        "kind",
        "reason",
        "release",
        "environments",
        "steps",
    }
    assert document["steps"] == [
        {"id": "promote", "run": "deployctl promote release-1.4.0", "env": "prod", "needs": [], "mutates": True}
    ]


def test_ci_steps_unknown_event_is_usage_error(invoke: Invoke) -> None:
    result = invoke("ci", "steps", "--event", "schedule", "--ref", "refs/heads/main")
    assert result.code == 2
    assert "unknown CI event" in result.err


@pytest.mark.parametrize(
    "args",
    [
        ("promote", "release-1.2.3", "--lock-timeout", "-5"),
        ("deploy", "dev", "--lock-timeout", "-5"),
        ("promote", "release-1.2.3", "--lock-timeout", "nan"),
        ("apply", "dev", "--lock-timeout", "-1"),
    ],
    ids=["promote-negative", "deploy-negative", "promote-nan", "apply-negative"],
)
def test_a_negative_lock_timeout_is_refused_before_anything_runs(invoke: Invoke, args: tuple[str, ...]) -> None:
    """Issue 13: `promote --lock-timeout -5` was accepted (and waited for nothing). Issue 17: one type for every
    command's --lock-timeout (whole seconds, 0..3600), so nan is refused too."""
    result = invoke(*args)
    assert result.code == 2, result.err
    assert result.err.startswith("error: Invalid value for '--lock-timeout'")
    assert "0<=x<=3600" in result.err or "is not a valid integer" in result.err
    assert result.out == ""
