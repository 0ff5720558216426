"""Per-kind verdicts and what ``tracking`` judges: StatefulSet (partition, OnDelete), DaemonSet, Job, a bare Pod,
the release's workloads in a namespace view, helm hooks, and each workload's health. Objects recorded from
the lab (tests/unit/data/rollout_objects.json) and small hand-made states."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from deployctl.rollout.hooks import hook_failure, hooks_in
from deployctl.rollout.kinds.daemonset import DaemonSetState, daemonset_verdict
from deployctl.rollout.kinds.job import JobState, job_verdict
from deployctl.rollout.kinds.pod import pod_verdict
from deployctl.rollout.kinds.statefulset import StatefulSetState, statefulset_verdict
from deployctl.rollout.pods import Condition, ContainerState, PodState, timestamp
from deployctl.rollout.signals import EventState, Tuning, VerdictContext
from deployctl.rollout.states import release_health
from deployctl.rollout.tracking import ManifestWorkload, health_of, new_pods, pods_of, release_verdict, targets_in
from tests.unit.test_rollout import RECORDED, recorded

D = "sha256:" + "d" * 64  # what the recorded objects ran first
E = "sha256:" + "e" * 64  # what they were updated to


def view(*keys: str, **edits: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """A namespace view of recorded objects (all of them by default); ``edits``: kind_name -> labels to add."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for key in keys or [k for k in RECORDED if "/" in k and not k.startswith("Event/") and "@" not in k]:
        obj = recorded(key)
        kind, name = key.split("/", 1)
        obj.setdefault("kind", kind)
        obj["metadata"].setdefault("labels", {}).update(edits.get(f"{kind}_{name}".replace("-", "_"), {}))
        found.setdefault(kind, {})[name] = obj
    return found


NOW = (timestamp(RECORDED["Pod/ready"]["metadata"]["creationTimestamp"]) or 0) + 30
CTX = VerdictContext(now=NOW)


# --------------------------------------------------------------------------- recorded objects, judged in a view


@pytest.mark.parametrize(
    ("target", "state", "reason", "pod", "words"),
    [
        (ManifestWorkload("Deployment", "api"), "failed", "CrashLoopBackOff", "api-86d8486b9f-ds5v4", "container api"),
        (ManifestWorkload("StatefulSet", "db"), "complete", None, None, "partition 1: 2 of 3 pods updated"),
        (ManifestWorkload("DaemonSet", "agent"), "failed", "CrashLoopBackOff", "agent-qt62d", "container agent"),
        (ManifestWorkload("Job", "job-failed"), "failed", "BackoffLimitExceeded", "job-failed-gpmdq", "container migrate: Error (code 1)"),
        (ManifestWorkload("Job", "job-deadline"), "failed", "DeadlineExceeded", None, "active longer than specified deadline"),
        (ManifestWorkload("Job", "job-done"), "complete", None, None, "completed"),
        (ManifestWorkload("Pod", "ready"), "complete", None, None, "is ready"),
        (ManifestWorkload("Pod", "exited"), "failed", "Error", "exited", "restartPolicy Never"),
        (ManifestWorkload("Pod", "gone"), "progressing", None, None, "waiting for Pod/gone to appear"),
    ],
)  # fmt: skip
def test_recorded_workloads_judged_in_a_view(
    target: ManifestWorkload, state: str, reason: str | None, pod: str | None, words: str
) -> None:
    verdict = release_verdict([target], view(), CTX)
    assert (verdict.state, verdict.reason, verdict.pod) == (state, reason, pod), verdict.message
    assert words in verdict.message
    assert verdict.resource == (target.ref if state != "complete" else None)  # complete: the whole release


def test_the_first_failure_ends_the_release_whatever_the_others_do() -> None:
    targets = [
        ManifestWorkload("StatefulSet", "db"),
        ManifestWorkload("Pod", "unsched"),
        ManifestWorkload("DaemonSet", "agent"),
    ]
    verdict = release_verdict(targets, view(), CTX)
    assert verdict.resource == "Pod/unsched" and verdict.reason == "Unschedulable"
    waiting = release_verdict([ManifestWorkload("Pod", "ready"), ManifestWorkload("Pod", "gone")], view(), CTX)
    assert waiting.state == "progressing" and "Pod/gone: waiting for Pod/gone to appear" in waiting.message
    assert release_verdict([], view(), CTX).state == "complete"


def test_tuning_comes_from_the_workloads_annotations() -> None:
    objects = view()
    objects["DaemonSet"]["agent"]["metadata"]["annotations"] = {"deployctl.dev/restarts-allowed": "5"}
    assert release_verdict([ManifestWorkload("DaemonSet", "agent")], objects, CTX).state == "progressing"


def test_old_pods_of_a_workload_are_not_judged() -> None:
    """The DaemonSet's crash-looping pod belongs to the new generation: labelled with the old one it is
    an old pod being replaced, and only the counts speak."""
    objects = view()
    objects["Pod"]["agent-qt62d"]["metadata"]["labels"]["pod-template-generation"] = "1"
    assert release_verdict([ManifestWorkload("DaemonSet", "agent")], objects, CTX).state == "progressing"


def test_health_of_each_kind_states_its_proof() -> None:
    objects = view()
    db = health_of("StatefulSet", objects["StatefulSet"]["db"], objects, CTX)
    assert (db.desired, db.held_back, db.desired_digest) == (2, 1, E)
    assert dict(db.serving) == {E: 2, D: 1} and db.confirmed == 2
    job = health_of("Job", objects["Job"]["job-done"], objects, CTX)
    assert (job.desired, job.serving, job.confirmed) == (1, ((D, 1),), 1)
    health = release_health("deployed", [db], E)
    assert health.healthy, health.reasons
    assert "statefulset db: 2/2 ready pods run" in health.proof and "1 held back" in health.proof
    agent = health_of("DaemonSet", objects["DaemonSet"]["agent"], objects, CTX)
    assert agent.verdict.reason == "CrashLoopBackOff"
    assert not release_health("deployed", [agent], E).healthy


def test_pods_are_their_workloads_by_owner_uid_not_by_name() -> None:
    """helm re-creates a hook Job under the same name while the old Job's pods terminate: those pods name the Job
    as their owner, but by the old uid, and must not decide the new Job's verdict (issue 24)."""
    objects = view("Job/job-done", "Job/job-failed", "Pod/job-done-s4cgn", "Pod/job-failed-gpmdq")
    old_pod = objects["Pod"].pop("job-failed-gpmdq")
    old_pod["metadata"]["ownerReferences"][0]["name"] = "job-done"  # the old Job of the same name: another uid
    objects["Pod"]["job-failed-gpmdq"] = old_pod
    assert release_verdict([ManifestWorkload("Job", "job-done")], objects, CTX).state == "complete"
    # the same pod, owned by this Job's uid, is one of its pods
    old_pod["metadata"]["ownerReferences"][0]["uid"] = objects["Job"]["job-done"]["metadata"]["uid"]
    assert len(health_of("Job", objects["Job"]["job-done"], objects, CTX).serving) == 1
    assert len(pods_of("Job", objects["Job"]["job-done"], objects)) == 2


def test_terminating_pods_never_decide_a_verdict() -> None:
    objects = view()
    objects["Deployment"]["api"]["status"]["conditions"] = []  # the recorded one is past its progress deadline
    crashing = objects["Pod"]["api-86d8486b9f-ds5v4"]
    assert release_verdict([ManifestWorkload("Deployment", "api")], objects, CTX).reason == "CrashLoopBackOff"
    crashing["metadata"]["deletionTimestamp"] = crashing["metadata"]["creationTimestamp"]
    verdict = release_verdict([ManifestWorkload("Deployment", "api")], objects, CTX)
    assert verdict.state == "progressing", verdict.message
    health = health_of("Deployment", objects["Deployment"]["api"], objects, CTX)
    assert health.terminating == 1


def test_a_deployments_new_pods_are_those_of_its_revisions_replicaset_by_uid_and_hash() -> None:
    objects = view()
    api = objects["Deployment"]["api"]
    pods = pods_of("Deployment", api, objects)
    fresh = new_pods("Deployment", api, pods, objects)
    assert [p.name for p in fresh] == ["api-86d8486b9f-ds5v4"]
    # a ReplicaSet of the revision owned by another Deployment of that name (deleted, re-created) is not its
    objects["ReplicaSet"]["api-86d8486b9f"]["metadata"]["ownerReferences"][0]["uid"] = "another-api"
    assert new_pods("Deployment", api, pods_of("Deployment", api, objects), objects) == []
    # a pod whose template hash is not its ReplicaSet's is not of the revision
    objects = view()
    objects["Pod"]["api-86d8486b9f-ds5v4"]["metadata"]["labels"]["pod-template-hash"] = "5875b4b59"
    assert new_pods("Deployment", api, pods_of("Deployment", api, objects), objects) == []


def test_the_release_manifest_says_what_to_judge_whatever_the_labels() -> None:
    """A chart without ``app.kubernetes.io/instance`` labels: its workloads come from helm's manifest."""
    objects = view("StatefulSet/db", "Pod/db-0", "Pod/db-1", "Pod/db-2")
    for obj in [*objects["StatefulSet"].values(), *objects["Pod"].values()]:
        obj["metadata"]["labels"].pop("app.kubernetes.io/instance", None)
    [target] = targets_in(MANIFEST_DB.replace("DIGEST", E))
    assert (target.ref, target.digest, target.min_replicas) == ("StatefulSet/db", E, None)
    health = health_of("StatefulSet", objects["StatefulSet"]["db"], objects, CTX, target)
    assert health.verdict.state == "complete" and release_health("deployed", [health], E).healthy


def test_a_live_spec_that_is_not_the_revisions_was_never_applied() -> None:
    """After a pre-upgrade hook failed, helm's latest revision pins E but the live StatefulSet still runs D."""
    objects = view("StatefulSet/db", "Pod/db-0", "Pod/db-1", "Pod/db-2")
    [target] = targets_in(MANIFEST_DB.replace("DIGEST", "sha256:" + "f" * 64))
    health = health_of("StatefulSet", objects["StatefulSet"]["db"], objects, CTX, target)
    assert (health.verdict.state, health.verdict.reason) == ("failed", "NotApplied")
    assert health.desired_digest == "sha256:" + "f" * 64 and f"runs {E}" in health.verdict.message
    assert not release_health("failed", [health], None).healthy


MANIFEST_DB = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: StatefulSet
    metadata: {name: db}
    spec:
      template:
        spec:
          containers: [{name: db, image: "registry/db@DIGEST"}]
    """
)


# --------------------------------------------------------------------------- helm hooks


def test_a_new_hook_that_failed_is_reported_with_its_job_pod_and_reason() -> None:
    objects = view("Job/job-failed", "Job/job-done", "Pod/job-failed-gpmdq", "Pod/job-done-s4cgn")
    for job in objects["Job"].values():
        job["metadata"]["annotations"] = {"helm.sh/hook": "pre-upgrade"}
    assert [t.ref for t in hooks_in(objects, baseline=())] == ["Job/job-done", "Job/job-failed"]
    failed = hook_failure(objects, (), CTX)
    assert failed is not None
    assert (failed.resource, failed.pod, failed.container) == ("Job/job-failed", "job-failed-gpmdq", "migrate")
    assert failed.reason == "BackoffLimitExceeded" and failed.summary.startswith("hook Job/job-failed: job job-failed")
    # a hook that existed before helm ran (an earlier release's) is not this upgrade's
    baseline = {objects["Job"]["job-failed"]["metadata"]["uid"]}
    assert hook_failure(objects, baseline, CTX) is None
    created = timestamp(objects["Job"]["job-failed"]["metadata"]["creationTimestamp"]) or 0
    assert hook_failure(objects, baseline, VerdictContext(now=NOW, since=created + 5)) is None
    # ... unless helm created it after it started, before the watch's first listing (whole seconds: 1 s slack)
    late = hook_failure(objects, baseline, VerdictContext(now=NOW, since=created + 0.5))
    assert late is not None and late.resource == "Job/job-failed"


def test_targets_in_a_manifest_skip_cronjobs_hooks_and_other_kinds() -> None:
    manifest = textwrap.dedent(
        """\
        apiVersion: v1
        kind: Service
        metadata: {name: db}
        ---
        apiVersion: apps/v1
        kind: StatefulSet
        metadata: {name: db}
        ---
        apiVersion: batch/v1
        kind: CronJob
        metadata: {name: nightly}
        ---
        apiVersion: batch/v1
        kind: Job
        metadata: {name: migrate, annotations: {helm.sh/hook: pre-upgrade}}
        ---
        apiVersion: batch/v1
        kind: Job
        metadata: {name: seed}
        ---
        apiVersion: apps/v1
        kind: DaemonSet
        metadata: {name: agent}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: once}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: api}
        """
    )
    assert [t.ref for t in targets_in(manifest)] == ["StatefulSet/db", "Job/seed", "DaemonSet/agent", "Pod/once", "Deployment/api"]  # fmt: skip


# --------------------------------------------------------------------------- hand-made states


def sts(**kw: Any) -> StatefulSetState:
    base: dict[str, Any] = {"name": "db", "generation": 2, "observed_generation": 2, "replicas": 3}
    base.update(
        status_replicas=3, ready_replicas=3, updated_replicas=3, update_revision="db-2", current_revision="db-2"
    )
    base.update(kw)
    return StatefulSetState(**base)


CRASH = PodState("db-2", (ContainerState("db", waiting_reason="CrashLoopBackOff", restart_count=2),), "Running")


@pytest.mark.parametrize(
    ("state", "pods", "verdict", "held_back"),
    [
        (sts(), [], "complete", 0),
        (sts(observed_generation=1), [], "progressing", 0),
        (sts(current_revision="db-1"), [], "progressing", 0),  # the controller has not finished the update
        (sts(updated_replicas=1), [], "progressing", 0),
        (sts(ready_replicas=2), [], "progressing", 0),
        (sts(status_replicas=4), [], "progressing", 0),  # scaling down: a pod terminates
        (sts(updated_replicas=1, current_revision="db-1", partition=2), [], "complete", 2),
        (sts(updated_replicas=0, current_revision="db-1", partition=2), [], "progressing", 2),
        (sts(updated_replicas=0, current_revision="db-1", strategy="OnDelete"), [], "complete", 3),
        (sts(updated_replicas=1, current_revision="db-1", strategy="OnDelete"), [CRASH], "failed", 2),
        (sts(replicas=0, status_replicas=0, ready_replicas=0, updated_replicas=0), [], "complete", 0),
    ],
)
def test_statefulset_verdict(state: StatefulSetState, pods: list[PodState], verdict: str, held_back: int) -> None:
    assert statefulset_verdict(state, pods, CTX).state == verdict
    assert state.held_back == held_back


def ds(**kw: Any) -> DaemonSetState:
    base: dict[str, Any] = {"name": "agent", "generation": 3, "observed_generation": 3, "desired": 3}
    base.update(updated=3, available=3, ready=3)
    base.update(kw)
    return DaemonSetState(**base)


@pytest.mark.parametrize(
    ("state", "verdict"),
    [
        (ds(), "complete"),
        (ds(observed_generation=2), "progressing"),
        (ds(updated=2), "progressing"),
        (ds(available=2), "progressing"),
        (ds(desired=0, updated=0, available=0, ready=0), "complete"),  # no node matches its selector
        (ds(updated=0, strategy="OnDelete"), "complete"),
        (ds(updated=0, ready=2, strategy="OnDelete"), "progressing"),
    ],
)
def test_daemonset_verdict(state: DaemonSetState, verdict: str) -> None:
    assert daemonset_verdict(state, [], CTX).state == verdict


FAILED_POD = PodState(
    "job-x", (ContainerState("run", terminated_reason="Error", exit_code=2),), "Failed", restart_policy="Never"
)
QUOTA = EventState("Job", "job", "FailedCreate", 'pods "job-x" is forbidden: exceeded quota', "Warning", time=NOW - 1)


@pytest.mark.parametrize(
    ("case", "job", "pods", "ctx", "state", "reason"),
    [
        ("running", JobState("job", active=1), [], CTX, "progressing", None),
        ("failure target", JobState("job", conditions=(Condition("FailureTarget", "True", "PodFailurePolicy"),)), [], CTX, "failed", "PodFailurePolicy"),
        ("suspended: not waited on", JobState("job", suspended=True), [], CTX, "complete", None),
        ("one failed pod: a retry is allowed", JobState("job", failed=1, active=1), [FAILED_POD], CTX, "progressing", None),
        ("two failed pods: beyond the budget", JobState("job", failed=2), [FAILED_POD], CTX, "failed", "Error"),
        ("a budget of 3", JobState("job", failed=2), [FAILED_POD], VerdictContext(Tuning(restarts_allowed=3), NOW), "progressing", None),
        ("FailedCreate during this rollout", JobState("job"), [], VerdictContext(now=NOW, events=(QUOTA,), since=NOW - 5), "failed", "FailedCreate"),
        ("FailedCreate of an earlier one", JobState("job"), [], VerdictContext(now=NOW, events=(QUOTA,), since=NOW + 60), "progressing", None),
    ],
)  # fmt: skip
def test_job_verdict(
    case: str, job: JobState, pods: list[PodState], ctx: VerdictContext, state: str, reason: str | None
) -> None:
    verdict = job_verdict(job, pods, ctx)
    assert (verdict.state, verdict.reason) == (state, reason), (case, verdict.message)


def test_a_pod_that_runs_to_completion_is_done_when_it_succeeded_not_when_ready() -> None:
    running = PodState("once", (ContainerState("run", ready=True),), "Running", ready=True, restart_policy="Never")
    assert pod_verdict(running, CTX).state == "progressing"
    assert pod_verdict(PodState("once", (), "Succeeded", restart_policy="Never"), CTX).state == "complete"
    serving = PodState("web", (ContainerState("web", ready=True),), "Running", ready=True)
    assert pod_verdict(serving, CTX).state == "complete"
