"""A rollout the check after the watch finds in progress again is watched again, not failed.

Seen in a ``make test`` run (a partitioned StatefulSet): the watch judged the rollout complete the moment the new
pod was ready, then the StatefulSet controller replaced that pod once more, and the check right after read "1 of 2
pods ready": a good release was recorded failed. The real controller cannot be made to do that on demand, so the
fake cluster of tests/unit/fakes.py injects it: its check answers "progressing" after a complete watch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deployctl.app.deploy import deploy
from deployctl.core.errors import OperationError
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


def checks_answering(cluster: FakeCluster, answers: list[Verdict]) -> None:
    """Every watch of ``cluster`` sees the rollout complete; the check after it (``live``) then sees ``answers`` in
    turn (the last one repeats)."""
    watch = cluster.watch_release

    def watched(manifest: str, **kwargs: Any) -> Verdict:
        name = manifest.split("name: ")[1].strip()
        watch(manifest, **kwargs)  # recorded in cluster.calls
        cluster.verdicts[name] = answers.pop(0) if len(answers) > 1 else answers[0]
        return COMPLETE

    cluster.watch_release = watched  # type: ignore[method-assign]


def test_a_rollout_in_progress_again_after_the_watch_is_watched_again_and_succeeds(repo: Path) -> None:  # noqa: F811
    ctx = dev_context(repo, FakeS3())
    cluster = ctx.fake_cluster
    checks_answering(cluster, [PROGRESSING, COMPLETE])

    report = deploy(ctx, image_tag=SHA)

    assert report.apps[0].outcome == "succeeded"
    assert cluster.calls.count("watch api") == 2, "watched again after the check found it in progress"
    assert [e.outcome for e in ctx.entries()] == ["succeeded", "started"]


def test_a_rollout_that_stays_in_progress_fails_at_its_timeout_naming_it(repo: Path) -> None:  # noqa: F811
    ctx = dev_context(repo, FakeS3())
    cluster = ctx.fake_cluster
    checks_answering(cluster, [PROGRESSING])

    with pytest.raises(OperationError) as failed:
        deploy(ctx, image_tag=SHA, rollout_timeout=1.0)

    assert "api in dev is not healthy after the rollout: deployment api: rollout progressing" in failed.value.message
    assert cluster.calls.count("watch api") >= 2, "watched again until the timeout, then failed"
    assert [e.outcome for e in ctx.entries()] == ["failed", "started"]
