"""A rollout the check after the watch finds in progress again is watched again, not failed.

Seen in a ``make test`` run (a partitioned StatefulSet): the watch judged the rollout complete the moment the new
pod was ready, then the StatefulSet controller replaced that pod once more, and the check right after read "1 of 2
pods ready": a good release was recorded failed. The real controller cannot be made to do that on demand, so the
fake cluster of tests/unit/fakes.py injects it: its check answers "progressing" after a complete watch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from deployctl.app.deploy import deploy
from deployctl.core.errors import OperationError
from deployctl.rollout.live import LiveRelease
from deployctl.rollout.states import Verdict, WorkloadHealth, release_health
from tests.unit.fakes import FakeCluster, FakeS3
from tests.unit.test_use_cases import DIGEST, SHA, dev_context, repo  # noqa: F401 (repo: a fixture)

PROGRESSING = Verdict("progressing", "1 of 2 pods ready")
COMPLETE = Verdict("complete", "partition 1: 1 of 2 pods updated, all ready")


def workload(verdict: Verdict, digest: str = DIGEST) -> WorkloadHealth:
    return WorkloadHealth("StatefulSet", "db", digest, 2, verdict, ((digest, 2),))


def test_only_a_rollout_in_progress_is_rolling() -> None:
    assert release_health("deployed", [workload(PROGRESSING)], DIGEST).rolling
    assert not release_health("deployed", [workload(COMPLETE)], DIGEST).rolling, "healthy"
    failed = Verdict("failed", "CrashLoopBackOff")
    assert not release_health("deployed", [workload(PROGRESSING), workload(failed)], DIGEST).rolling
    assert not release_health("deployed", [workload(PROGRESSING, "sha256:" + "0" * 64)], DIGEST).rolling
    assert not release_health("failed", [workload(PROGRESSING)], DIGEST).rolling, "helm's own failure"


def checks_answering(cluster: FakeCluster, answers: list[Verdict]) -> Callable[..., LiveRelease | None]:
    """``cluster.live`` whose workload verdicts are ``answers`` in turn, after each watch (the last one repeats)."""
    live = cluster.live

    def answering(name: str, release: object = None) -> LiveRelease | None:
        found = live(name, release)  # type: ignore[arg-type]
        if found is None or "watch" not in (cluster.calls[-1:] or [""])[0]:
            return found
        verdict = answers.pop(0) if len(answers) > 1 else answers[0]
        cluster.verdicts[name] = verdict
        found = live(name, release)  # type: ignore[arg-type]
        cluster.verdicts.pop(name)
        return found

    return answering


def test_a_rollout_in_progress_again_after_the_watch_is_watched_again_and_succeeds(repo: Path) -> None:  # noqa: F811
    ctx = dev_context(repo, FakeS3())
    cluster = ctx.fake_cluster
    cluster.live = checks_answering(cluster, [PROGRESSING, COMPLETE])  # type: ignore[method-assign]

    report = deploy(ctx, image_tag=SHA)

    assert report.apps[0].outcome == "succeeded"
    assert cluster.calls.count("watch api") == 2, "watched again after the check found it in progress"
    assert [e.outcome for e in ctx.entries()] == ["succeeded", "started"]


def test_a_rollout_that_stays_in_progress_fails_at_its_timeout_naming_it(repo: Path) -> None:  # noqa: F811
    ctx = dev_context(repo, FakeS3())
    cluster = ctx.fake_cluster
    cluster.live = checks_answering(cluster, [PROGRESSING])  # type: ignore[method-assign]

    with pytest.raises(OperationError) as failed:
        deploy(ctx, image_tag=SHA, rollout_timeout=1.0)

    assert "api in dev is not healthy after the rollout: deployment api: rollout progressing" in failed.value.message
    assert cluster.calls.count("watch api") >= 2, "watched again until the timeout, then failed"
    assert [e.outcome for e in ctx.entries()] == ["failed", "started"]
