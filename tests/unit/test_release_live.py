"""What a release runs now, judged from helm's revision: an HPA's floor and a scale-up, the revision's failed hooks,
what serves after a failure, and the watch's view when an object is re-created under its name (issue 24)."""

from __future__ import annotations

import textwrap
from typing import Any

from deployctl.rollout.hooks import hook_verdicts
from deployctl.rollout.kinds.deployment import DeploymentState, verdict_of
from deployctl.rollout.kinds.statefulset import StatefulSetState, statefulset_verdict
from deployctl.rollout.signals import VerdictContext
from deployctl.rollout.states import Verdict, WorkloadHealth, release_health, what_serves
from deployctl.rollout.tracking import targets_in
from deployctl.rollout.watch import keep
from tests.unit.test_kinds import CTX, D, E, view

HPA_MANIFEST = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: api}
    spec:
      template:
        spec:
          containers: [{name: api, image: "r/api@DIGEST"}]
    ---
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    metadata: {name: api}
    spec:
      scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
      minReplicas: 3
      maxReplicas: 10
    """
).replace("DIGEST", D)


def deployment(**kw: Any) -> DeploymentState:
    base: dict[str, Any] = {"name": "api", "generation": 2, "observed_generation": 2, "replicas": 1}
    base.update(status_replicas=1, updated_replicas=1, available_replicas=1, ready_replicas=1)
    return DeploymentState(**{**base, **kw})


def test_an_hpa_of_the_release_gives_its_target_a_floor() -> None:
    [target] = targets_in(HPA_MANIFEST)
    assert (target.ref, target.digest, target.min_replicas) == ("Deployment/api", D, 3)


def test_a_deployment_behind_an_hpa_is_complete_only_at_its_min_replicas() -> None:
    """The demo's prod ``api`` (no ``replicas``, HPA minReplicas 3) was judged healthy at 1 replica, before the HPA
    scaled it; ``status`` then called the scale-up a failing rollout."""
    assert verdict_of(deployment(), [], VerdictContext()).state == "complete"  # no HPA: 1 of 1
    one = verdict_of(deployment(), [], VerdictContext(), min_replicas=3)
    assert one.state == "progressing" and "1 of 3 new replicas updated (its HPA's minReplicas 3)" in one.message
    scaled = deployment(replicas=3, status_replicas=3, updated_replicas=3, available_replicas=3, ready_replicas=3)
    assert verdict_of(scaled, [], VerdictContext(), min_replicas=3).state == "complete"
    # the HPA asks for 5: every pod is of the new revision and ready, two more are coming: scaling, not unfinished
    scaling = deployment(replicas=5, status_replicas=3, updated_replicas=3, available_replicas=3, ready_replicas=3)
    verdict = verdict_of(scaling, [], VerdictContext(), min_replicas=3)
    assert verdict.state == "complete" and "scaling to 5" in verdict.message
    assert verdict_of(scaling, [], VerdictContext()).state == "progressing"  # without the HPA it is not done
    # old replicas still there: a rollout, not a scale-up
    rolling = deployment(replicas=5, status_replicas=6, updated_replicas=4, available_replicas=5, ready_replicas=5)
    assert verdict_of(rolling, [], VerdictContext(), min_replicas=3).state == "progressing"


def test_a_statefulset_behind_an_hpa_scales_up_without_being_unfinished() -> None:
    base = StatefulSetState("db", 2, 2, 5, 3, 3, 3, "db-2", "db-2")
    assert statefulset_verdict(base, [], CTX).state == "progressing"
    verdict = statefulset_verdict(base, [], CTX, min_replicas=3)
    assert verdict.state == "complete" and "scaling to 5" in verdict.message
    below = StatefulSetState("db", 2, 2, 1, 1, 1, 1, "db-2", "db-2")
    assert statefulset_verdict(below, [], CTX, min_replicas=2).state == "progressing"


def test_health_at_the_hpa_floor_with_more_pods_ready_is_healthy() -> None:
    w = WorkloadHealth("Deployment", "api", D, 3, Verdict("complete", "scaling"), ((D, 4),), autoscaled=3)
    health = release_health("deployed", [w], D)
    assert health.healthy and "4 ready pods run" in health.proof and "HPA minReplicas 3" in health.proof
    short = WorkloadHealth("Deployment", "api", D, 3, Verdict("complete", "x"), ((D, 2),), autoscaled=3)
    assert not release_health("deployed", [short], D).healthy


def test_the_revisions_failed_hooks_come_from_helms_record_and_the_cluster() -> None:
    objects = view("Job/job-failed", "Job/job-done", "Pod/job-failed-gpmdq", "Pod/job-done-s4cgn")
    # helm stopped while the hook ran (phase Running) and the live Job failed: a failed hook, with why
    [failed] = hook_verdicts([("Job", "job-failed", "Running"), ("Job", "job-done", "Succeeded")], objects, CTX)
    assert failed.summary.startswith("hook Job/job-failed failed: job job-failed: BackoffLimitExceeded")
    assert failed.pod == "job-failed-gpmdq"
    # helm saw it fail and it is gone (deleted by its policy): still failed
    [gone] = hook_verdicts([("Job", "migrate", "Failed")], objects, CTX)
    assert gone.resource == "Job/migrate" and "helm recorded its last run as Failed" in gone.message
    # a hook that succeeded is not judged again, whatever a later run left under its name
    assert hook_verdicts([("Job", "job-failed", "Succeeded")], objects, CTX) == []
    health = release_health("failed", [], None, [failed])
    assert any(r.startswith("hook Job/job-failed failed") for r in health.reasons)


def test_what_serves_after_a_failure_is_read_from_the_pods() -> None:
    """The hint after a failed StatefulSet rollout said "the previous pods keep serving" while its only pod ran
    the crashing digest."""
    only = WorkloadHealth("StatefulSet", "db", E, 1, Verdict("failed", "crash"), ())
    assert what_serves([only], E) == "statefulset db: no pod serves (none is ready)"
    kept = WorkloadHealth("Deployment", "api", E, 2, Verdict("failed", "crash"), ((D, 2),))
    assert what_serves([kept], E) == f"deployment api: 2 ready pod(s) of {D}"
    mixed = WorkloadHealth("Deployment", "api", E, 2, Verdict("failed", "x"), ((D, 1), (E, 1)))
    assert what_serves([mixed], E) == f"deployment api: 1 ready pod(s) of {D}, 1 ready pod(s) of the failing {E}"


def obj(name: str, uid: str, created: str, deleting: bool = False) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": uid, "creationTimestamp": created}
    if deleting:
        meta["deletionTimestamp"] = created
    return {"metadata": meta}


def test_the_watch_keeps_the_new_object_of_a_name_when_the_old_ones_updates_arrive_late() -> None:
    store: dict[str, dict[str, Any]] = {}
    keep(store, obj("migrate", "new", "2026-12-07T10:00:05Z"))
    keep(store, obj("migrate", "old", "2026-12-07T10:00:00Z", deleting=True))  # the old Job's deletion going on
    assert store["migrate"]["metadata"]["uid"] == "new"
    keep(store, obj("migrate", "old", "2026-12-07T10:00:00Z"))  # older: never replaces the newer one
    assert store["migrate"]["metadata"]["uid"] == "new"
    keep(store, obj("migrate", "newer", "2026-12-07T10:00:09Z"))
    assert store["migrate"]["metadata"]["uid"] == "newer"
