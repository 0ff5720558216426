"""The lab tests' shared world: a repository of its own whose configuration points at the lab, deployctl run in this
process, git, the images CI would push, the cluster as kubectl and helm see it, and the moto server a module starts
for itself. Each test module's world is a ``World`` with what only that module needs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployctl.cli.main import main
from deployctl.sandbox import image_push

ROOT = Path(__file__).resolve().parents[2]
# moto's documented fake credentials, and who commits
AWS_TESTING = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def git(repo: Path, *args: str) -> str:
    """git in ``repo``; its output, stripped."""
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


def git_identity(name: str = "t", email: str = "t@example.invalid") -> dict[str, str]:
    """The variables that make ``name`` the author and committer of the commits a test makes."""
    return {
        "GIT_AUTHOR_NAME": name,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": name,
        "GIT_COMMITTER_EMAIL": email,
    }


def use_lab_aws(monkeypatch: pytest.MonkeyPatch, extra: Mapping[str, str] | None = None) -> None:
    """This process speaks to moto with its fake credentials (no profile, no configured sandbox), as ``extra`` adds."""
    for key, value in {**AWS_TESTING, **git_identity(), **(extra or {})}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "DEPLOYCTL_CONFIG", "DEPLOYCTL_SANDBOX"):
        monkeypatch.delenv(key, raising=False)


def empty_commit(repo: Path, subject: str) -> str:
    """An empty commit on ``repo``'s current branch (what CI builds an image for); its sha."""
    git(repo, "commit", "-q", "--allow-empty", "-m", subject)
    return git(repo, "rev-parse", "HEAD")


def commit_all(repo: Path, message: str = "init") -> None:
    """``repo`` made a repository on main, its files committed."""
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", message)


def free_port() -> int:
    """A port nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def toml(value: Any) -> str:
    """Just enough TOML for a [tool.deployctl] table (inline tables, arrays, scalars)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


@contextlib.contextmanager
def moto_server(log: Path, env: Mapping[str, str] | None = None, *, timeout: float = 30) -> Iterator[str]:
    """A moto server of the module's own (its log in ``log``) for the block: its URL once it answers."""
    port = free_port()
    with log.open("wb") as sink:
        moto = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=dict(env if env is not None else os.environ),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                urllib.request.urlopen(f"{url}/moto-api/", timeout=1).close()  # noqa: S310 (local http)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        moto.terminate()
        moto.wait(timeout=10)


@dataclass
class World:
    """A repository of the test's own (its configuration in ``pyproject.toml``), deployctl run in this process."""

    repo: Path
    capsys: pytest.CaptureFixture[str]

    def config(self, name: str = "pyproject.toml") -> Path:
        return self.repo / name

    def run(self, *args: str, config: Path | None = None) -> tuple[int, Any, str]:
        """deployctl in this process (-o json); returns (exit code, JSON document, stderr)."""
        self.capsys.readouterr()
        code = main(["--config", str(config or self.config()), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err


def tag_digest(registry: str, repository: str, tag: str) -> str | None:
    """The digest ``tag`` names in ``registry``/``repository``, None when there is no such tag."""
    try:
        data, _, _ = image_push.get_manifest(registry, repository, tag)
    except image_push.RegistryHTTPError:
        return None
    return "sha256:" + hashlib.sha256(data).hexdigest()


def kubectl_json(kubeconfig: Path, namespace: str, *args: str) -> Any:
    """``kubectl -o json`` in ``namespace``: the document."""
    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "-n", namespace, *args, "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def helm_history(kubeconfig: Path, namespace: str, release: str) -> list[dict[str, Any]]:
    """``release``'s helm revisions in ``namespace`` ([] when it is not installed)."""
    result = subprocess.run(
        ["helm", "--kubeconfig", str(kubeconfig), "-n", namespace, "history", release, "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    return list(json.loads(result.stdout)) if result.returncode == 0 else []


def wait_for(proc: subprocess.Popen[str], needle: str, timeout: float = 120) -> str:
    """Read the child's stderr until ``needle`` shows up."""
    assert proc.stderr is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen += line
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never appeared:\n{seen}")
