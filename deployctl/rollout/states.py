"""Rollout facts, pure: the ``Verdict``, a workload's health and ``release_health``, THE definition of healthy (used
by ``deploy`` after its watch, ``status`` and the promotion gate).

Pods and containers as states are in ``pods``; the failure signals in ``signals``, the per-kind rollout rules in
``kinds``, and which pods belong to which workload of a release in ``tracking`` (all table-tested in
tests/unit/test_rollout.py and test_kinds.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from deployctl.rollout.pods import PodState

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
DIGEST_ANNOTATION = "deployctl.dev/image-digest"


VerdictState = Literal["progressing", "complete", "failed"]


@dataclass(frozen=True)
class Verdict:
    """A rollout's (or one workload's, or one hook's) verdict: its state, a one-line message and what it is about."""

    state: VerdictState
    message: str  # first line: the one-line summary; then the diagnosis, one indented line each
    pod: str | None = None
    container: str | None = None
    reason: str | None = None
    resource: str | None = None  # Kind/name of the workload (or hook) the verdict is about
    diagnosis: tuple[str, ...] = ()  # recent events, last log lines (see ``diagnosis``)

    @property
    def done(self) -> bool:
        return self.state != "progressing"

    @property
    def summary(self) -> str:
        return self.message.split("\n", 1)[0]

    def diagnosed(self, lines: Sequence[str]) -> Verdict:
        """The verdict with its diagnosis: in ``diagnosis`` and, one indented line each, after the summary."""
        if not lines:
            return self
        message = "\n".join([self.summary, *(f"  {line}" for line in lines)])
        return replace(self, message=message, diagnosis=tuple(lines))

    def details(self) -> dict[str, object]:
        """What a failure's JSON carries (``error`` object): the resource, pod, container, reason, diagnosis."""
        return {
            "resource": self.resource,
            "pod": self.pod,
            "container": self.container,
            "reason": self.reason,
            "diagnosis": list(self.diagnosis),
        }


@dataclass(frozen=True)
class WorkloadHealth:
    """One workload of a release as it runs now: what it should run, its rollout verdict, what serves."""

    kind: str
    name: str
    desired_digest: str | None  # the digest its spec (pod template) names
    desired: int  # pods that should run it (a Job: completions; held-back pods excluded)
    verdict: Verdict
    serving: tuple[tuple[str | None, int], ...] = ()  # (digest, ready pods; a Job: completed pods), most first
    held_back: int = 0  # pods its update strategy keeps on the old revision (StatefulSet partition, OnDelete)
    confirmed: int = 0  # counted pods of the desired digest whose imageID the kubelet reported
    autoscaled: int | None = None  # an HPA of the release scales it: its minReplicas (``desired`` is that floor)
    terminating: int = 0  # pods being deleted: shown, never judged

    @property
    def ready(self) -> int:
        return sum(count for _, count in self.serving)

    @property
    def ready_desired(self) -> int:
        """Ready pods that run the desired digest (the old ReplicaSet's pods do not count)."""
        return sum(count for digest, count in self.serving if digest == self.desired_digest)


@dataclass(frozen=True)
class Health:
    healthy: bool
    reasons: tuple[str, ...] = ()
    proof: str = ""  # what was checked, per workload
    # Every reason is a workload whose rollout is still progressing, nothing failed or wrong: the controller moved
    # on after a "complete" (a StatefulSet replacing the pod it had just made), so the rollout is not over.
    rolling: bool = False

    @property
    def summary(self) -> str:
        return "healthy" if self.healthy else "; ".join(self.reasons)


def serving(pods: Sequence[PodState], *, completed: bool = False) -> tuple[tuple[str | None, int], ...]:
    """Pods that serve (ready, or done: a pod that ran to completion), not terminating, counted by the digest
    they run, most first; ``completed``: only the done ones (a Job's running pod may be ready, not done)."""
    counts: dict[str | None, int] = {}
    for pod in pods:
        if (pod.done or (pod.ready and not completed)) and not pod.deleting:
            counts[pod.digest] = counts.get(pod.digest, 0) + 1
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0] or "")))


def _proof(w: WorkloadHealth) -> str:
    noun = "completed" if w.kind == "Job" else "ready"
    text = f"{w.kind.lower()} {w.name}: {w.ready_desired}/{w.desired} {noun} pods run {w.desired_digest}"
    if w.autoscaled is not None:
        floor = f"HPA minReplicas {w.autoscaled}"
        text = f"{w.kind.lower()} {w.name}: {w.ready_desired} ready pods run {w.desired_digest} ({floor})"
    if w.ready_desired:
        text += (
            f" (imageID confirmed on {w.confirmed})" if w.confirmed else " (pod spec; the kubelet reports no imageID)"
        )
    if w.held_back:
        text += f"; {w.held_back} held back by its update strategy"
    return text


def release_health(
    helm_status: str | None,
    workloads: Sequence[WorkloadHealth],
    digest: str | None,
    hooks: Sequence[Verdict] = (),
) -> Health:
    """THE definition of healthy: the helm release is ``deployed``, none of its revision's hooks failed
    (``hooks``: the failed ones), every workload's rollout is complete with all its pods of the desired digest
    ready (a Job: completed), every workload's spec names ``digest`` (when given), and no pod of another digest
    serves (beyond the pods its update strategy holds back). Terminating pods count for nothing."""
    reasons: list[str] = []
    if helm_status is None:
        return Health(False, ("the release is not installed",))
    if helm_status != "deployed":
        reasons.append(f"helm release is {helm_status}")
    reasons += [hook.summary for hook in hooks]
    if not workloads:
        reasons.append("the release has no workloads to verify")
    progressing = 0  # reasons that are a rollout still in progress
    for w in workloads:
        what = f"{w.kind.lower()} {w.name}"
        if w.verdict.state != "complete":
            reasons.append(f"{what}: rollout {w.verdict.state}: {w.verdict.summary}")
            progressing += w.verdict.state == "progressing"
        if digest is not None and w.desired_digest != digest:
            reasons.append(f"{what} runs {w.desired_digest or 'no pinned digest'}, not {digest}")
        if w.verdict.state == "complete" and w.ready_desired < w.desired:
            reasons.append(f"{what}: {w.ready_desired} of {w.desired} pods of its digest ready")
        if w.held_back and not w.ready_desired:
            reasons.append(f"{what}: no pod runs {w.desired_digest} yet: its update strategy holds back {w.held_back}")
        others = [(d, n) for d, n in w.serving if d != w.desired_digest]
        if sum(n for _, n in others) > w.held_back:
            listed = ", ".join(f"{n} of {d or 'unpinned'}" for d, n in others)
            reasons.append(f"{what}: pods of another digest serve ({listed})")
    rolling = bool(reasons) and progressing == len(reasons)
    return Health(not reasons, tuple(reasons), "; ".join(_proof(w) for w in workloads), rolling)


def what_serves(workloads: Sequence[WorkloadHealth], failing: str | None) -> str:
    """What serves a release now, from its pods (not from what a rollout usually leaves): per workload, the ready
    pods of each digest, said to be of ``failing`` (the digest that just failed) or of another, or that none is
    ready. A failed StatefulSet of one pod replaces that pod: nothing of the previous digest serves then."""
    parts = []
    for w in workloads:
        what = f"{w.kind.lower()} {w.name}"
        if not w.serving:
            pods = "no pod" if w.kind != "Job" else "no completed pod"
            parts.append(f"{what}: {pods} serves (none is ready)")
            continue
        counts = [
            f"{n} ready pod(s) of {'the failing ' if d == failing else ''}{d or 'an unpinned image'}"
            for d, n in w.serving
        ]
        parts.append(f"{what}: {', '.join(counts)}")
    return "; ".join(parts) if parts else "the release has no workloads"
