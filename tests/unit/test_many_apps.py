"""A release is many apps (fake context: tests/unit/fakes.py): deploy rolls every app out in `needs` order and
stops at the first failure; promote judges every app and refuses the whole release when one fails a gate."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.registry import TransferReport
from deployctl.app import promote as promote_app
from deployctl.app.context import Contexts
from deployctl.app.deploy import deploy
from deployctl.config import ConfigProblemsError, deploy_order, load
from deployctl.core.errors import OperationError, PolicyError, UsageError
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from deployctl.runner import ProcessRunner
from tests.unit.fakes import Events, FakeContext, FakeS3

ROOT = Path(__file__).resolve().parents[2]
API, WORKER = "sha256:" + "a" * 64, "sha256:" + "b" * 64
BUCKET = "acme-tfstate"


def config_text(extra: str = "") -> str:
    envs = "".join(
        f"""
[tool.deployctl.environments.{name}]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {{ bucket = "{BUCKET}", key = "{name}/terraform.tfstate", region = "us-east-1" }} }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "ns"
values = "values-{name}.yaml"
lock_timeout_seconds = 0
{'promote_from = "dev"' if name == "prod" else ""}
{'promote_soak_minutes = 0' if name == "prod" else ""}
"""
        for name in ("dev", "prod")
    )
    return f"""
[tool.deployctl]
[tool.deployctl.apps.worker]
chart = "{ROOT / "charts" / "api"}"
release = "worker"
image = {{ registry = "r.example", repository = "worker" }}
needs = ["api"]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "r.example", repository = "api" }}
{extra}
{envs}"""


def git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={**env, "PATH": "/usr/bin:/bin"},
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(config_text())
    (tmp_path / "values-dev.yaml").write_text("api:\n  replicaCount: 1\nworker:\n  replicaCount: 1\n")
    (tmp_path / "values-prod.yaml").write_text(
        'api:\n  image:\n    tag: ""\n    digest: ""\nworker:\n  image:\n    tag: ""\n    digest: ""\n'
    )
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-q", "-m", "init")
    return tmp_path


def test_needs_order_and_bad_needs_are_refused_at_load(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(config_text())
    assert deploy_order(load(path).settings.apps) == ["api", "worker"]
    path.write_text(
        config_text()
        .replace('needs = ["api"]', 'needs = ["api"]\n', 1)
        .replace("[tool.deployctl.apps.api]", '[tool.deployctl.apps.api]\nneeds = ["worker"]')
    )
    with pytest.raises(ConfigProblemsError, match="needs form a cycle: api -> worker -> api"):
        load(path)


def test_deploy_rolls_every_app_out_in_order_and_stops_at_the_first_failure(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    s3 = FakeS3()
    ctx = FakeContext(load(repo / "pyproject.toml"), "dev", ProcessRunner(), s3=s3)
    ctx.digests = {sha: API}  # both repositories answer the tag in this fake registry
    report = deploy(ctx)
    assert [r.app for r in report.apps] == ["api", "worker"], "api first: worker needs it"
    upgrades = [c for c in ctx.fake_cluster.calls if c.startswith("upgrade")]
    assert upgrades == [f"upgrade api {API}", f"upgrade worker {API}"]

    ctx.fake_cluster.verdict = Verdict("failed", "CrashLoopBackOff", reason="CrashLoopBackOff")
    ctx.fake_cluster.calls.clear()
    with pytest.raises(OperationError) as caught:
        deploy(ctx)
    assert "api: FAILED" in caught.value.message and "worker: not started" in caught.value.message
    assert caught.value.details["apps"] == {"api": "failed", "worker": "not started"}
    assert [c for c in ctx.fake_cluster.calls if c.startswith("upgrade")] == [f"upgrade api {API}"]


def test_an_app_without_an_image_refuses_the_whole_deploy_unless_optional(repo: Path) -> None:
    s3 = FakeS3()
    ctx = FakeContext(load(repo / "pyproject.toml"), "dev", ProcessRunner(), s3=s3)
    ctx.resolve_image = _only_api  # type: ignore[method-assign]
    with pytest.raises(UsageError, match="worker: .*not found"):
        deploy(ctx)
    assert ctx.fake_cluster.calls == [] and s3.objects == {}, "nothing rendered, locked or recorded"
    (repo / "pyproject.toml").write_text(config_text().replace('needs = ["api"]', 'needs = ["api"]\noptional = true'))
    ctx = FakeContext(load(repo / "pyproject.toml"), "dev", ProcessRunner(), s3=s3)
    ctx.resolve_image = _only_api  # type: ignore[method-assign]
    report = deploy(ctx)
    assert [r.app for r in report.apps] == ["api"] and "worker" in report.skipped[0]


def _only_api(image: Any) -> Any:
    from dataclasses import replace

    if image.repository != "api":
        raise UsageError(f"image tag {image.tag!r} not found in {image.name}")
    return replace(image, digest=API)


def test_one_failing_gate_refuses_the_whole_release_and_changes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    git(repo, "tag", "release-1.0.0")
    commit = git(repo, "rev-parse", "HEAD")
    s3 = FakeS3()
    config = load(repo / "pyproject.toml")
    contexts = Contexts(config, ProcessRunner(), Events())
    tags = {("api", commit): API, ("worker", commit): WORKER}
    transfers: list[str] = []
    for name in ("dev", "prod"):
        ctx = FakeContext(config, name, ProcessRunner(), s3=s3)

        def endpoint(image: Any) -> Any:
            class _Endpoint:
                host, repository, ecr, name = image.registry, image.repository, None, image.name

                def resolve(self, tag: str) -> str | None:
                    return tags.get((self.repository, tag))

            return _Endpoint()

        monkeypatch.setattr(ctx, "endpoint", endpoint)
        contexts._built[name] = ctx
    dev = contexts["dev"]
    assert isinstance(dev, FakeContext)
    deploy(dev, app="api", digest=API)  # api rolled out healthy in dev; worker never did

    def transfer(_s: Any, _t: Any, digest: str, tag: str, **_: Any) -> TransferReport:
        transfers.append(digest)
        return TransferReport("oci-retag", digest, tag)

    monkeypatch.setattr("deployctl.adapters.registry.promote_image", transfer)
    before = (repo / "values-prod.yaml").read_text()
    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert "worker: verified-in-source" in caught.value.message
    assert "api: " not in caught.value.message, "api passed its gates"
    assert transfers == [] and (repo / "values-prod.yaml").read_text() == before
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    assert prod.entries() == [] and prod.fake_cluster.calls == []


def test_a_failed_promotion_records_in_the_values_file_only_the_apps_that_rolled_out(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 25: the failed release wrote both apps' digests into values-prod.yaml, the worker's too, which never
    ran; ``status prod`` then called the healthy worker NOT HEALTHY ("values DIFFERS")."""
    git(repo, "tag", "release-1.0.0")
    commit = git(repo, "rev-parse", "HEAD")
    s3 = FakeS3()
    config = load(repo / "pyproject.toml")
    contexts = Contexts(config, ProcessRunner(), Events())
    tags = {("api", commit): API, ("worker", commit): WORKER}
    for name in ("dev", "prod"):
        ctx = FakeContext(config, name, ProcessRunner(), s3=s3)

        def endpoint(image: Any) -> Any:
            class _Endpoint:
                host, repository, ecr, name = image.registry, image.repository, None, image.name

                def resolve(self, tag: str) -> str | None:
                    return tags.get((self.repository, tag))

            return _Endpoint()

        monkeypatch.setattr(ctx, "endpoint", endpoint)
        contexts._built[name] = ctx
    dev = contexts["dev"]
    assert isinstance(dev, FakeContext)
    deploy(dev, app="api", digest=API)
    deploy(dev, app="worker", digest=WORKER)
    monkeypatch.setattr(
        "deployctl.adapters.registry.promote_image",
        lambda _s, _t, digest, tag, **_: TransferReport("oci-retag", digest, tag),
    )
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    prod.fake_cluster.verdicts["worker"] = Verdict("failed", "CrashLoopBackOff", reason="CrashLoopBackOff")
    with pytest.raises(OperationError):
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    values = (repo / "values-prod.yaml").read_text()
    assert f'digest: "{API}"' in values, "api rolled out: recorded"
    assert WORKER not in values, "worker never ran in prod: not recorded"
    outcomes = {(e.app, e.outcome) for e in prod.entries()}
    assert outcomes >= {("api", "succeeded"), ("worker", "failed")}
