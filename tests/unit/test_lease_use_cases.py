"""A run that lost its environment lock writes nothing more: deploy and promote on the fake context (the real
use cases, lock, lease and ledger on in-memory S3; tests/unit/fakes.py). The take-over is simulated by
planting another run's lock at the moment the run would stall (a fake is the only way to pause it exactly
there; tests/lab/test_lease.py stops a real process with SIGSTOP)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters.helm import Release
from deployctl.adapters.kube.release_records import ReleaseRecord
from deployctl.adapters.registry import TransferReport
from deployctl.app import promote as promote_app
from deployctl.app.deploy import deploy
from deployctl.app.locks import lock_status
from deployctl.app.steps.recovery import recover_pending
from deployctl.core.errors import ExitCode
from deployctl.ledger.lock import LeaseLostError
from deployctl.ledger.lock_record import lock_key
from deployctl.promotion.request import PromoteRequest
from deployctl.rollout.states import Verdict
from tests.unit.fakes import FakeContext, FakeS3
from tests.unit.test_lock import planted
from tests.unit.test_use_cases import BUCKET, DIGEST, SHA, dev_context, promote_world, repo  # noqa: F401 (fixture)


def take_over(s3: FakeS3, env: str) -> None:
    """Another run takes the lock over, as when this one stalled (SIGSTOP, a frozen VM) past its TTL."""
    info = asdict(planted("successor", fence=9)) | {"env": env}
    s3.objects[(BUCKET, lock_key(env))] = json.dumps(info).encode()
    s3.modified[(BUCKET, lock_key(env))] = s3.clock()


def successor(s3: FakeS3, env: str) -> str | None:
    held = s3.held_lock(env)
    return None if held is None else str(held["id"])


def test_a_deploy_that_lost_the_lock_during_its_watch_records_nothing_more(repo: Path) -> None:  # noqa: F811
    s3 = FakeS3()
    ctx = dev_context(repo, s3)

    def stalled_watch(_manifest: str, **_: Any) -> Verdict:
        take_over(s3, "dev")
        return Verdict("complete", "1 of 1 replicas updated and available")

    ctx.fake_cluster.watch_release = stalled_watch  # type: ignore[method-assign, assignment]
    with pytest.raises(LeaseLostError) as caught:
        deploy(ctx, image_tag=SHA)
    assert caught.value.exit_code == ExitCode.LOCKED
    assert caught.value.message.startswith("lost the lock of dev to ci@another-host")
    assert [e.outcome for e in ctx.entries()] == ["started"], "the intent only: no verdict after the take-over"
    assert successor(s3, "dev") == "successor"


class PendingCluster:
    """A release left pending-upgrade, with its pending record (helm's secret)."""

    def __init__(self) -> None:
        self.deleted: list[ReleaseRecord] = []

    def release(self, name: str) -> Release:
        return Release(name, "api", 2, "pending-upgrade")

    def pending_records(self, release: str) -> list[ReleaseRecord]:
        return [ReleaseRecord(f"sh.helm.release.v1.{release}.v2", 2, "pending-upgrade")]

    def delete_record(self, record: ReleaseRecord) -> None:
        self.deleted.append(record)


def test_a_run_that_lost_the_lock_never_removes_the_pending_record_of_the_run_that_took_it(
    repo: Path,  # noqa: F811
) -> None:
    s3 = FakeS3()
    ctx = dev_context(repo, s3)
    cluster = PendingCluster()
    with pytest.raises(LeaseLostError), ctx.locked("deploy dev"):  # noqa: PT012 (the block is the hold)
        take_over(s3, "dev")  # the other run is mid-upgrade: its revision is pending
        recover_pending(ctx, cluster, "api", cluster.release("api"))  # type: ignore[arg-type]
    assert cluster.deleted == [] and ctx.entries() == []


def fenced_transfer(s3: FakeS3, tags: dict[str, str], *, before: bool) -> Any:
    """The registry transfer as the real one calls its ``before_tag`` check; the lock is taken over while the
    blobs stream (``before``) or right after the tag moved."""

    def transfer(_source: Any, target: Any, digest: str, tag: str, **kwargs: Any) -> TransferReport:
        if before:
            take_over(s3, "prod")
        kwargs["before_tag"]()
        tags[tag] = digest
        if not before:
            take_over(s3, "prod")
        return TransferReport("oci-retag", digest, f"{target.name}:{tag}", manifests_put=1)

    return transfer


@pytest.mark.parametrize("before", [True, False], ids=["before-the-tag", "before-the-values-edit"])
def test_a_promotion_that_lost_the_lock_moves_no_tag_and_edits_no_values(
    repo: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    before: bool,
) -> None:
    contexts, s3, endpoints = promote_world(repo, monkeypatch)
    monkeypatch.setattr("deployctl.adapters.registry.promote_image", fenced_transfer(s3, endpoints.tags, before=before))
    values = (repo / "values-prod.yaml").read_text()
    with pytest.raises(LeaseLostError) as caught:
        promote_app.promote(contexts, PromoteRequest("release-1.0.0"))
    assert caught.value.exit_code == ExitCode.LOCKED
    assert ("release-1.0.0" in endpoints.tags) is not before, "the tag moves only while the lock is this run's"
    assert (repo / "values-prod.yaml").read_text() == values
    prod = contexts["prod"]
    assert isinstance(prod, FakeContext)
    assert prod.entries() == [], "no entry, not even its failure"
    assert not [c for c in prod.fake_cluster.calls if c.startswith("upgrade")]
    assert successor(s3, "prod") == "successor"


def test_lock_status_shows_the_fencing_number_the_last_renewal_and_the_expiry_on_s3s_clock(
    repo: Path,  # noqa: F811
) -> None:
    s3 = FakeS3(clock=lambda: datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC))  # S3's clock, not the runner's
    ctx = dev_context(repo, s3)
    with ctx.locked("deploy dev") as lease:
        s3.modified[(BUCKET, lock_key("dev"))] = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)  # renewed then
        result = lock_status(ctx)
    text = "\n".join(result.text())
    assert f"id {lease.id}, fence 1" in text
    assert "renewed 2030-01-01T12:00:00+00:00, expires 2030-01-01T12:02:00+00:00 unless renewed" in text
    data = result.data()["lock"]
    assert (data["fence"], data["expires"], data["expired"]) == (1, "2030-01-01T12:02:00+00:00", False)
