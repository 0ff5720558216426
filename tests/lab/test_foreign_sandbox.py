"""The test suite never touches a user's sandbox (issue 24, section 6).

A user's sandbox runs, started in another repository, with its pointer in the user's $XDG_STATE_HOME and
`eval "$(deployctl sandbox env)"` done in their shell ($DEPLOYCTL_SANDBOX set). The test modules that start, look
up, mark, restart and stop sandboxes run in that environment (a child pytest); afterwards the user's sandbox is
still up and healthy: the same processes, its pointer, the state bucket object and the namespace it held.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.sandbox import tools
from deployctl.sandbox.procfs import processes_in_groups

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
# What starts, looks up, changes or stops a sandbox (the port-churn test, minutes of lab starts, left out).
MODULES = (
    "tests/lab/test_lab_ports.py",
    "tests/lab/test_first_hour.py",
    "tests/lab/test_own_images.py",
    "tests/cli/test_first_hour.py",
    "tests/cli/test_sandbox_choice.py",
    "tests/cli/test_examples.py",
)
SELECT = ("-k", "not loopback_ports_churn")
PROJECT = """[tool.deployctl.environments.dev]
aws = { region = "us-east-1" }
terraform = { root = "tf", backend = { bucket = "users-tfstate", key = "dev.tfstate", region = "us-east-1" } }
"""


def _deployctl(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "deployctl", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _status(state: Path, env: dict[str, str], cwd: Path) -> dict[str, Any]:
    done = _deployctl("-o", "json", "sandbox", "status", "--sandbox", str(state.parent), env=env, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@pytest.mark.timeout(1800)
def test_the_suite_leaves_a_users_sandbox_from_another_repository_running(tmp_path: Path) -> None:
    tools.ensure(progress=lambda _line: None)
    user = tmp_path / "user"  # the user's own state: their pointer lives here
    theirs = tmp_path / "their-repo"
    theirs.mkdir()
    (theirs / "pyproject.toml").write_text(PROJECT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYCTL_", "PYTEST_", "AWS_"))}
    env.update(XDG_STATE_HOME=str(user / "state"), XDG_CONFIG_HOME=str(user / "config"), NO_COLOR="1")
    up = _deployctl("sandbox", "up", env=env, cwd=theirs)
    assert up.returncode == 0, up.stderr
    state = (theirs / ".deployctl" / "sandbox" / "state.json").resolve()
    pointer = user / "state" / "deployctl" / "sandbox"
    try:
        before = _status(state, env, theirs)
        exported = _deployctl("sandbox", "env", env=env, cwd=theirs)
        assert exported.returncode == 0, exported.stderr
        shell = dict(env)  # the user's shell after `eval "$(deployctl sandbox env)"`
        for line in exported.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                shell[key] = value.strip("'")
        assert shell["DEPLOYCTL_SANDBOX"] == str(state)
        s3 = boto3.client("s3", endpoint_url=before["moto_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
        s3.put_object(Bucket="users-tfstate", Key="ledger/theirs", Body=b"their history")
        kubectl = ["kubectl", "--kubeconfig", before["kubeconfig"]]
        subprocess.run([*kubectl, "create", "namespace", "theirs"], env=shell, check=True, capture_output=True)
        markers = json.loads(state.read_text())["markers"]

        suite = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *MODULES,
                *SELECT,
                "-p",
                "no:cacheprovider",
                "-q",
                "-x",
                "--basetemp",
                str(tmp_path / "suite"),
            ],  # fmt: skip
            cwd=ROOT,
            env=shell,
            capture_output=True,
            text=True,
            timeout=1500,
            check=False,
        )
        tail = "\n".join((suite.stdout + suite.stderr).splitlines()[-40:])
        os.write(2, f"\n[measure] the suite beside a user's sandbox: {tail.splitlines()[-1]}\n".encode())

        after = _status(state, env, theirs)
        assert after["healthy"] is True
        pids = {c["name"]: c["pid"] for c in before["components"]}
        assert {c["name"]: c["pid"] for c in after["components"]} == pids, "nothing was restarted"
        assert all(processes_in_groups([pid]) for pid in pids.values()), "every process is alive"
        assert pointer.read_text().strip() == str(state), "their pointer is intact"
        body = s3.get_object(Bucket="users-tfstate", Key="ledger/theirs")["Body"].read()
        assert body == b"their history", "moto kept its data (it was not restarted)"
        got = subprocess.run([*kubectl, "get", "namespace", "theirs", "-o", "name"], env=shell,
                             capture_output=True, text=True, check=False)  # fmt: skip
        assert got.stdout.strip() == "namespace/theirs", got.stderr
        assert json.loads(state.read_text())["markers"] == markers, "no image of theirs was marked"
        assert suite.returncode == 0, tail
    finally:
        _deployctl("sandbox", "down", "--sandbox", str(theirs), env=env, cwd=theirs)
