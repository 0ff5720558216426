"""The deploy lab world: a git repository with the reference chart, a lab registry, moto for the lock and the
history, and helpers to read what the cluster runs (shared by the deploy lab tests; the fixture
``deploy_world`` is registered in conftest.py)."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from deployctl.app.context import EnvContext
from deployctl.cli.main import main
from deployctl.config import load
from deployctl.console import Console
from deployctl.ledger.entry import Entry
from deployctl.runner import ProcessRunner
from deployctl.sandbox import image_push
from deployctl.sandbox.lab import Lab
from deployctl.terraform import state_bucket
from tests import values_files

ROOT = Path(__file__).resolve().parents[2]
CHARTS = Path(__file__).resolve().parent / "charts"  # the lab charts of each workload kind
BUCKET = "deploy-tfstate"
HELM_WAIT_BUDGET = 300.0  # helm's default --timeout: what `helm upgrade --wait` would sit through


def measure(line: str) -> None:
    """A measured figure, on the real stderr (capsys holds sys.stderr); shown with ``pytest -s``."""
    os.write(2, f"\n[measure] {line}\n".encode())


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class World:
    """A repository whose config points dev at the lab, in a namespace of its own."""

    repo: Path
    registry: str
    namespace: str
    kubeconfig: Path
    env: dict[str, str]
    capsys: pytest.CaptureFixture[str]
    head: str

    def config(self, name: str = "pyproject.toml") -> Path:
        return self.repo / name

    def write_config(
        self,
        name: str = "pyproject.toml",
        *,
        repository: str = "api",
        values: str = "values-dev.yaml",
        kubeconfig: Path | None = None,
    ) -> Path:
        aws = f'aws = {{ region = "us-east-1", endpoint_url = "{self.env["AWS_ENDPOINT_URL"]}" }}'
        backend = f'backend = {{ bucket = "{BUCKET}", key = "dev/terraform.tfstate", region = "us-east-1" }}'
        cluster = f'cluster = {{ kubeconfig = "{kubeconfig or self.kubeconfig}", context = "deployctl-lab" }}'
        path = self.repo / name
        path.write_text(
            f"""[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "{self.registry}", repository = "{repository}" }}

[tool.deployctl.environments.dev]
{aws}
terraform = {{ root = "tf/dev", {backend} }}
{cluster}
namespace = "{self.namespace}"
values = "{values}"
lock_timeout_seconds = 120
"""
        )
        return path

    def run(self, *args: str, config: Path | None = None) -> tuple[int, Any, str]:
        """deployctl in this process (-o json); returns (exit code, JSON document, stderr)."""
        self.capsys.readouterr()
        code = main(["--config", str(config or self.config()), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    def spawn(
        self, *args: str, config: Path | None = None, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """deployctl as a child process (for kills and concurrency)."""
        argv = [sys.executable, "-m", "deployctl", "--config", str(config or self.config()), "-o", "json", *args]
        return subprocess.Popen(
            argv, env=dict(env or self.env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=self.repo
        )

    def kubectl(self, *args: str) -> str:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    def helm(self, *args: str, binary: str = "helm", check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binary, "--kubeconfig", str(self.kubeconfig), "-n", self.namespace, *args],
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
        )

    def revisions(self) -> list[int]:
        result = self.helm("history", "api", "-o", "json", check=False)
        return [int(r["revision"]) for r in json.loads(result.stdout)] if result.returncode == 0 else []

    def pods(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = json.loads(self.kubectl("get", "pods", "-o", "json"))["items"]
        return items

    def ledger(self) -> list[Entry]:
        config = load(self.config())
        entries = EnvContext(config, "dev", ProcessRunner(), Console()).ledger.read().entries
        return [e for e in entries if e.outcome != "started"]  # the judged outcomes; intents: ``intents()``

    def intents(self) -> list[Entry]:
        config = load(self.config())
        return [
            e
            for e in EnvContext(config, "dev", ProcessRunner(), Console()).ledger.read().entries
            if e.outcome == "started"
        ]

    def push(self, repository: str, tag: str, seed: int) -> str:
        return image_push.push_image(self.registry, repository, tag, seed=seed).digest


@pytest.fixture
def deploy_world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> World:
    env = {
        **os.environ,
        **lab.env(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    env.pop("AWS_PROFILE", None)
    env.pop("DEPLOYCTL_CONFIG", None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # the state bucket as `deployctl bootstrap` makes it: versioned, the ledger under Object Lock
    state_bucket.ensure(boto3.client("s3", endpoint_url=aws_reset, region_name="us-east-1"), BUCKET, "us-east-1", 1)
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "values-dev.yaml").write_text(values_files.reference("values-dev.yaml"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    w = World(
        repo=repo,
        registry=registry,
        namespace=f"t{uuid.uuid4().hex[:8]}",
        kubeconfig=lab.kubeconfig,
        env=env,
        capsys=capsys,
        head=git(repo, "rev-parse", "HEAD"),
    )
    w.write_config()
    return w


def make_pending(w: World, status: str = "pending-upgrade") -> int:
    """Leave the release exactly as a killed ``helm upgrade`` does: a newer revision record stuck in
    ``pending-*`` (helm's secret storage: base64(gzip(JSON)) in ``data.release``, status in a label)."""
    secrets = json.loads(w.kubectl("get", "secrets", "-l", "owner=helm,name=api", "-o", "json"))["items"]
    latest = max(secrets, key=lambda s: int(s["metadata"]["labels"]["version"]))
    doc = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(latest["data"]["release"]))))
    version = int(latest["metadata"]["labels"]["version"]) + 1
    doc["version"] = version
    doc["info"]["status"] = status
    payload = base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": latest["type"],
        "metadata": {
            "name": f"sh.helm.release.v1.api.v{version}",
            "labels": {**latest["metadata"]["labels"], "status": status, "version": str(version)},
        },
        "data": {"release": base64.b64encode(payload.encode()).decode()},
    }
    path = w.repo / "pending-secret.json"
    path.write_text(json.dumps(secret))
    w.kubectl("create", "-f", str(path))
    return version


# --------------------------------------------------------------------------- the happy path


# --------------------------------------------------------------------------- the lab charts (tests/lab/charts)


def use_chart(w: World, chart: str, section: dict[str, Any], repository: str) -> Path:
    """Point the app ``api`` at a lab chart (or the repository's own, ``deployment``) with these values."""
    if chart == "deployment":
        base = yaml.safe_load((ROOT / "values-dev.yaml").read_text())["api"]
        section = {**base, **section}
    (w.repo / "values-dev.yaml").write_text(yaml.safe_dump({"api": section}))
    config = w.write_config(f"{chart}.toml", repository=repository)
    if chart != "deployment":
        text = config.read_text().replace(str(ROOT / "charts" / "api"), str(CHARTS / chart))
        config.write_text(text)
    return config


def migration(w: World, seed: int, repository: str = "migrate") -> dict[str, Any]:
    """The StatefulSet chart's pre-upgrade migration Job, on an image of its own."""
    return {"migration": {"repository": f"{w.registry}/{repository}", "digest": w.push(repository, "m", seed)}}


def deploy(w: World, config: Path, tag: str) -> tuple[int, Any, str, float]:
    started = time.monotonic()
    code, out, err = w.run("deploy", "dev", "--image-tag", tag, config=config)
    return code, out, err, time.monotonic() - started


def pod_images(w: World) -> dict[str, str]:
    return {
        p["metadata"]["name"]: p["spec"]["containers"][0]["image"]
        for p in w.pods()
        if p["status"].get("phase") in ("Running", "Succeeded") and not p["metadata"].get("deletionTimestamp")
    }
