"""deploy, promote -> deploy, and the lock take-over, with a fake context (tests/unit/fakes.py): the real
use cases, the real lock and ledger code, on in-memory S3, cluster and registry. Each test asserts
the state the use case claims (lock held during helm, one ledger entry with its verdict), not calls."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.registry import TransferReport
from deployctl.app import promote as promote_app
from deployctl.app.context import Contexts
from deployctl.app.deploy import deploy
from deployctl.config import load
from deployctl.core.errors import ExitCode, LockedError, OperationError, PolicyError, UsageError
from deployctl.ledger.entry import Entry, open_intents
from deployctl.ledger.lock_record import lock_key
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from deployctl.runner import ProcessRunner
from tests import values_files
from tests.gitrepo import git
from tests.unit.fakes import Events, FakeContext, FakeS3

ROOT = Path(__file__).resolve().parents[2]
SHA = "a" * 40
DIGEST = "sha256:" + "d" * 64
BUCKET = "acme-tfstate"
CONFIG = f"""
[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "registry.example:5000", repository = "api" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {{ bucket = "{BUCKET}", key = "dev/terraform.tfstate", region = "us-east-1" }} }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-dev.yaml"
lock_timeout_seconds = 0

[tool.deployctl.environments.prod]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "tf", backend = {{ bucket = "{BUCKET}", key = "prod/terraform.tfstate", region = "us-east-1" }} }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
lock_timeout_seconds = 0
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    for name in ("values-dev.yaml", "values-prod.yaml"):
        (tmp_path / name).write_text(values_files.reference(name))
    return tmp_path


def dev_context(repo: Path, s3: FakeS3) -> FakeContext:
    return FakeContext(load(repo / "pyproject.toml"), "dev", ProcessRunner(), s3=s3, digests={SHA: DIGEST})


def test_deploy_rolls_out_under_the_lock_and_records_the_verified_verdict(repo: Path) -> None:
    s3 = FakeS3()
    ctx = dev_context(repo, s3)
    result = deploy(ctx, image_tag=SHA)

    cluster = ctx.fake_cluster
    assert cluster.calls == [f"template api {DIGEST}", f"upgrade api {DIGEST}", "watch api"]
    assert cluster.lookups == ["api"], "one helm lookup per rollout (pending? already running it?), not one each"
    assert cluster.lock_at_upgrade is not None and cluster.lock_at_upgrade["command"] == "deploy dev --app api"
    assert s3.held_lock("dev") is None, "released afterwards"
    entry, intent = ctx.entries()  # newest first: the outcome completes the intent written before helm ran
    assert (intent.outcome, intent.digest, entry.intent) == ("started", DIGEST, intent.id)
    assert (entry.action, entry.outcome, entry.verdict) == ("deploy", "succeeded", "healthy")
    assert (entry.digest, entry.commit, entry.release) == (DIGEST, SHA, "api@1")
    (only,) = result.apps
    assert only.outcome == "succeeded" and only.image.digest == DIGEST and only.git_sha == SHA


def test_deploy_rollout_failure_is_recorded_once_and_releases_the_lock(repo: Path) -> None:
    s3 = FakeS3()
    ctx = dev_context(repo, s3)
    ctx.fake_cluster.verdict = Verdict(
        "failed", "pod api-1 container api: CrashLoopBackOff", "api-1", "api", "CrashLoopBackOff"
    )
    with pytest.raises(OperationError) as caught:
        deploy(ctx, image_tag=SHA)
    assert caught.value.exit_code == ExitCode.FAILED
    assert "CrashLoopBackOff" in caught.value.message
    assert caught.value.hint is not None and "Roll forward" in caught.value.hint
    entry, _ = ctx.entries()
    assert (entry.outcome, entry.verdict, entry.digest) == ("failed", "failed", DIGEST)
    assert s3.held_lock("dev") is None


def test_deploy_does_not_claim_success_when_the_old_pods_still_serve(repo: Path) -> None:
    """The watch said complete, but the release is judged again from the cluster before success is claimed."""
    s3 = FakeS3()
    ctx = dev_context(repo, s3)
    ctx.fake_cluster.old_pods_keep_serving = True
    with pytest.raises(OperationError, match="not healthy after the rollout"):
        deploy(ctx, image_tag=SHA)
    entry, _ = ctx.entries()
    assert (entry.outcome, entry.verdict) == ("failed", "failed")


def test_deploy_refused_by_the_chart_changes_nothing(repo: Path) -> None:
    s3 = FakeS3()
    ctx = dev_context(repo, s3)
    ctx.fake_cluster.rejects_values = True
    with pytest.raises(UsageError):
        deploy(ctx, image_tag=SHA)
    assert ctx.fake_cluster.calls == [f"template api {DIGEST}"], "no upgrade"
    assert s3.objects == {}, "no lock taken, nothing recorded"


def test_an_interrupted_rollout_is_recorded_and_the_next_run_settles_it(repo: Path) -> None:
    """Killed while helm ran (SIGINT/SIGTERM): the intent is completed as interrupted. Killed harder
    (nothing could be written): the next deploy finds the open intent and the helm revision it made."""
    s3 = FakeS3()
    ctx = dev_context(repo, s3)
    ctx.fake_cluster.interrupt_upgrade = True
    with pytest.raises(KeyboardInterrupt):
        deploy(ctx, image_tag=SHA)
    done, intent = ctx.entries()
    assert (done.outcome, done.intent, intent.outcome) == ("interrupted", intent.id, "started")
    assert s3.held_lock("dev") is None, "the lock is released on the way out"

    # a run that died without a word: its intent stays open, and helm's history names it
    s3.objects = {k: v for k, v in s3.objects.items() if done.id not in k[1]}  # never written: no object,
    s3.versions = {k: v for k, v in s3.versions.items() if done.id not in k[1]}  # no version listed
    assert open_intents(ctx.entries()) == [intent]
    ctx.fake_cluster.interrupt_upgrade = False
    deploy(ctx, image_tag=SHA)  # the same cluster: its helm history has the revision the dead run made
    settled = next(e for e in ctx.entries() if e.intent == intent.id)
    assert settled.outcome == "unknown" and "helm revision 1 (deployed) was made" in settled.message
    assert open_intents(ctx.entries()) == []
    assert [e.outcome for e in ctx.entries() if e.outcome != "started"] == ["succeeded", "unknown"]


def plant_lock(s3: FakeS3, env: str, *, expired: bool) -> str:
    now = datetime.now(UTC)
    expires = now - timedelta(minutes=1) if expired else now + timedelta(hours=1)
    info = {
        "id": "stale0",
        "env": env,
        "owner": "ci",
        "host": "another-host" if not expired else socket.gethostname(),
        "pid": 1,
        "command": "deploy dev",
        "ci_run_id": "42",
        "started_at": (now - timedelta(hours=2)).isoformat(timespec="seconds"),
        "expires_at": expires.isoformat(timespec="seconds"),
    }
    s3.objects[(BUCKET, lock_key(env))] = json.dumps(info).encode()  # as a deployctl before leases wrote it
    s3.modified[(BUCKET, lock_key(env))] = now - timedelta(hours=2)  # written at its start, by S3's clock
    return "stale0"


def test_a_stale_lock_is_taken_over_and_reported(repo: Path) -> None:
    s3 = FakeS3()
    plant_lock(s3, "dev", expired=True)
    ctx = dev_context(repo, s3)
    deploy(ctx, image_tag=SHA)
    warnings = [line for line in ctx.events.lines if line.startswith("warning:")]
    assert len(warnings) == 1 and "took over a stale lock" in warnings[0] and "CI run 42" in warnings[0]
    held = ctx.fake_cluster.lock_at_upgrade
    assert held is not None and held["id"] != "stale0"
    assert s3.held_lock("dev") is None


def test_a_live_lock_refuses_with_exit_5_and_changes_nothing(repo: Path) -> None:
    s3 = FakeS3()
    plant_lock(s3, "dev", expired=False)
    ctx = dev_context(repo, s3)
    with pytest.raises(LockedError) as caught:
        deploy(ctx, image_tag=SHA)
    assert caught.value.exit_code == ExitCode.LOCKED
    assert caught.value.hint is not None and "lock break dev --id stale0" in caught.value.hint
    assert not [c for c in ctx.fake_cluster.calls if c.startswith("upgrade")]
    assert s3.held_lock("dev") is not None and s3.held_lock("dev")["id"] == "stale0"  # type: ignore[index]


class FakeEndpoints:
    """The registry seen by promote: what each tag names, and the transfers made (in memory)."""

    def __init__(self, tags: dict[str, str]) -> None:
        self.tags = tags
        self.transfers: list[tuple[str, str, dict[str, Any] | None]] = []

    def endpoint(self, image: Any) -> Any:
        registry = self

        class _Endpoint:
            host, repository, ecr = image.registry, image.repository, None
            name = f"{image.registry}/{image.repository}"

            def resolve(self, tag: str) -> str | None:
                return registry.tags.get(tag)

        return _Endpoint()


def promote_world(
    repo: Path, monkeypatch: pytest.MonkeyPatch, *, verdict: Verdict | None = None, s3: FakeS3 | None = None
) -> tuple[Contexts, FakeS3, FakeEndpoints]:
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "release me")
    git(repo, "tag", "release-1.0.0")
    commit = git(repo, "rev-parse", "HEAD")
    s3 = s3 or FakeS3()
    endpoints = FakeEndpoints({commit: DIGEST})
    config = load(repo / "pyproject.toml")
    runner = ProcessRunner()
    events = Events()
    contexts = Contexts(config, runner, events)
    for name in ("dev", "prod"):
        ctx = FakeContext(config, name, runner, s3=s3, events=events)
        monkeypatch.setattr(ctx, "endpoint", endpoints.endpoint)
        contexts._built[name] = ctx  # the fake contexts this command uses
    dev = contexts["dev"]
    assert isinstance(dev, FakeContext)
    deploy(dev, digest=DIGEST)  # the evidence: the release's digest rolled out healthy in dev
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    if verdict is not None:
        prod.fake_cluster.verdict = verdict

    def transfer(_source: Any, target: Any, digest: str, tag: str, **_: Any) -> TransferReport:
        # A fake registry transfer; the lab tests move real bytes. Records whether prod's lock was held.
        endpoints.transfers.append((digest, tag, s3.held_lock("prod")))
        endpoints.tags[tag] = digest
        return TransferReport("oci-retag", digest, f"{target.name}:{tag}", manifests_put=1)

    monkeypatch.setattr("deployctl.adapters.registry.promote_image", transfer)
    return contexts, s3, endpoints


def test_promote_moves_the_image_then_rolls_out_under_the_targets_lock_one_entry(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts, s3, endpoints = promote_world(repo, monkeypatch)
    result = promote_app.promote(contexts, PromoteRequest("release-1.0.0"))

    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    ((digest, tag, lock_then),) = endpoints.transfers
    assert (digest, tag) == (DIGEST, "release-1.0.0")
    assert lock_then is not None and lock_then["command"] == "deployctl promote release-1.0.0"
    assert prod.fake_cluster.lock_at_upgrade is not None
    assert prod.fake_cluster.lock_at_upgrade["id"] == lock_then["id"], "one lock held from retag to rollout"
    assert prod.fake_cluster.calls[-2:] == [f"upgrade api {DIGEST}", "watch api"]
    assert f'digest: "{DIGEST}"' in (repo / "values-prod.yaml").read_text()
    entry, _ = prod.entries()
    assert (entry.action, entry.outcome, entry.verdict) == ("promote", "succeeded", "healthy")
    assert (entry.tag, entry.release, entry.digest, entry.source_env) == (
        "release-1.0.0",
        "release-1.0.0",
        DIGEST,
        "dev",
    )
    assert result.outcome == "succeeded"
    assert [s.name for s in result.steps] == ["image api", "deploy api", "values"]  # values: once it runs
    assert s3.held_lock("prod") is None
    # the next plan reads what prod runs from prod's ledger: this release, now a no-op
    again, *_ = promote_app.plan(contexts, PromoteRequest("release-1.0.0"))
    facts = again.app("api").facts
    assert (facts.target_from, str(facts.target_version), again.noop) == ("ledger", "1.0.0", True)


def test_promote_whose_rollout_fails_records_one_failed_entry(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    contexts, _, _ = promote_world(
        repo, monkeypatch, verdict=Verdict("failed", "ImagePullBackOff", reason="ImagePullBackOff")
    )
    with pytest.raises(OperationError, match="ImagePullBackOff"):
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    entry, _ = prod.entries()
    assert (entry.action, entry.outcome, entry.verdict, entry.digest) == ("promote", "failed", "failed", DIGEST)


def test_promote_of_a_digest_that_failed_in_dev_is_refused_and_changes_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts, s3, endpoints = promote_world(repo, monkeypatch)
    dev = contexts["dev"]
    assert isinstance(dev, FakeContext)
    dev.fake_cluster.verdict = Verdict("failed", "CrashLoopBackOff", reason="CrashLoopBackOff")
    with pytest.raises(OperationError):
        deploy(dev, digest=DIGEST)  # the same digest, redeployed, fails: the latest verdict on it is "failed"
    values_before = (repo / "values-prod.yaml").read_text()
    objects_before = dict(s3.objects)
    with pytest.raises(PolicyError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert caught.value.exit_code == ExitCode.REFUSED
    assert (
        "verified-in-source" in caught.value.message
        and "failed in dev after its healthy rollout" in caught.value.message
    )
    assert endpoints.transfers == [], "no registry change"
    assert (repo / "values-prod.yaml").read_text() == values_before
    assert s3.objects == objects_before, "no ledger entry, no lock left"


def test_a_promotion_target_deploys_only_a_promoted_digest(repo: Path) -> None:
    """values-prod.yaml is a file anyone can edit: a hand-written digest is refused (under the lock) unless
    the override is passed, and then the override and its reason are in the ledger."""
    values = repo / "values-prod.yaml"
    values.write_text(
        values.read_text()
        .replace('  digest: ""', f'  digest: "{DIGEST}"')
        .replace('  tag: ""', '  tag: "release-9.9.9"')
    )
    s3 = FakeS3()
    prod = FakeContext(load(repo / "pyproject.toml"), "prod", ProcessRunner(), s3=s3)
    with pytest.raises(PolicyError) as caught:
        deploy(prod)
    assert caught.value.exit_code == ExitCode.REFUSED
    assert "was never promoted to prod" in caught.value.message
    assert caught.value.hint is not None and "--allow-unpromoted --reason" in caught.value.hint
    assert not [c for c in prod.fake_cluster.calls if c.startswith("upgrade")]
    assert prod.entries() == [] and s3.held_lock("prod") is None

    deploy(prod, allow_unpromoted="INC-42: restore the hotfix build")
    entry, _ = prod.entries()
    assert (entry.outcome, [(o.flag, o.reason) for o in entry.overrides]) == (
        "succeeded",
        [("--allow-unpromoted", "INC-42: restore the hotfix build")],
    )


def test_deploy_of_a_promotion_target_follows_the_ledger_when_the_values_file_lags(repo: Path) -> None:
    """A promotion made on a CI runner may never reach this checkout's values file: the ledger is the source
    of truth for what prod runs."""
    s3 = FakeS3()
    prod = FakeContext(load(repo / "pyproject.toml"), "prod", ProcessRunner(), s3=s3)
    prod.record(
        Entry(
            env="prod", app="api", action="promote", outcome="succeeded", digest=DIGEST, tag="release-2.0.0", commit=SHA
        )
    )
    report = deploy(prod)  # values-prod.yaml still pins nothing
    assert report.apps[0].image.digest == DIGEST and report.apps[0].image.tag == "release-2.0.0"
    assert any("the newest promotion to prod is release-2.0.0" in line for line in prod.events.lines)
