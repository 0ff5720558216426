"""What to judge in a namespace, pure: the workloads a release renders (or the hooks helm is running), which
pods belong to each (by owner references), which of them are the new revision's, and the verdict of each.

A ``View`` is the namespace as the watch (or one listing) sees it: kind -> name -> API object (dicts,
camelCase). The same functions serve the rollout watch, the hook watch, and ``status``' one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from deployctl import kinds
from deployctl.rollout import (
    DIGEST_ANNOTATION,
    REVISION_ANNOTATION,
    PodState,
    Verdict,
    WorkloadHealth,
    digest_in,
    pod_state,
    serving,
    timestamp,
)
from deployctl.verdicts import Context, tuning_from

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "Pod")  # CronJobs are not waited on
HOOK_ANNOTATION = "helm.sh/hook"
INSTANCE_LABEL = "app.kubernetes.io/instance"
View = Mapping[str, Mapping[str, Mapping[str, Any]]]  # kind -> name -> object


@dataclass(frozen=True)
class Target:
    kind: str
    name: str

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def targets_in(manifest: str) -> list[Target]:
    """The workloads a rendered release manifest (multi-document YAML) rolls out, in manifest order."""
    import yaml

    found = []
    for doc in yaml.safe_load_all(manifest):
        if isinstance(doc, dict) and doc.get("kind") in WORKLOAD_KINDS:
            annotations = (doc.get("metadata") or {}).get("annotations") or {}
            if HOOK_ANNOTATION not in annotations:
                found.append(Target(str(doc["kind"]), str((doc.get("metadata") or {}).get("name", ""))))
    return found


def kinds_to_watch(targets: Iterable[Target]) -> set[str]:
    """The API kinds a view needs to judge ``targets`` (a Deployment's pods are found through ReplicaSets)."""
    wanted = {t.kind for t in targets} | {"Pod"}
    if "Deployment" in wanted:
        wanted.add("ReplicaSet")
    return wanted


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _owner(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    owner = next((o for o in _meta(obj).get("ownerReferences") or () if o.get("controller")), None)
    return (str(owner.get("kind", "")), str(owner.get("name", ""))) if owner else None


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template of a workload (a bare Pod is its own)."""
    if obj.get("kind") == "Pod" or "containers" in (obj.get("spec") or {}):
        return obj
    return (obj.get("spec") or {}).get("template") or {}


def pods_of(kind: str, obj: Mapping[str, Any], view: View) -> list[PodState]:
    """Every pod of a workload, by controller owner references (a Deployment's through its ReplicaSets)."""
    name = str(_meta(obj).get("name", ""))
    if kind == "Pod":
        return [pod_state(obj)]
    owners = {(kind, name)}
    if kind == "Deployment":
        owners = {("ReplicaSet", rs) for rs, o in (view.get("ReplicaSet") or {}).items() if _owner(o) == (kind, name)}
    return [pod_state(p) for p in (view.get("Pod") or {}).values() if _owner(p) in owners]


def new_pods(kind: str, obj: Mapping[str, Any], pods: Sequence[PodState], view: View) -> list[PodState]:
    """The pods of the workload's current revision (old pods are replaced, not judged)."""
    meta, status = _meta(obj), obj.get("status") or {}
    if kind == "Deployment":
        revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
        sets = {
            name
            for name, rs in (view.get("ReplicaSet") or {}).items()
            if _owner(rs) == (kind, meta.get("name"))
            and (_meta(rs).get("annotations") or {}).get(REVISION_ANNOTATION) == revision
        }
        return [p for p in pods if revision and p.owner is not None and p.owner[1] in sets]
    if kind == "StatefulSet":
        return [p for p in pods if p.label("controller-revision-hash") == status.get("updateRevision")]
    if kind == "DaemonSet":
        return [p for p in pods if p.label("pod-template-generation") == str(meta.get("generation"))]
    return list(pods)


def context_for(obj: Mapping[str, Any], ctx: Context) -> Context:
    """``ctx`` with the tuning the workload's annotations (or its pod template's) ask for."""
    annotations = _meta(obj).get("annotations")
    template = _meta(_template(obj)).get("annotations")
    return replace(ctx, tuning=tuning_from(annotations, template, autoscaler=ctx.tuning.autoscaler))


def judge_object(kind: str, obj: Mapping[str, Any], view: View, ctx: Context) -> tuple[Verdict, list[PodState]]:
    """The verdict of one live workload, and its pods."""
    ctx = context_for(obj, ctx)
    pods = pods_of(kind, obj, view)
    fresh = new_pods(kind, obj, pods, view)
    if kind == "Deployment":
        verdict = kinds.verdict_of(kinds.deployment_state(obj), fresh, ctx)
    elif kind == "StatefulSet":
        verdict = kinds.statefulset_verdict(kinds.statefulset_state(obj), fresh, ctx)
    elif kind == "DaemonSet":
        verdict = kinds.daemonset_verdict(kinds.daemonset_state(obj), fresh, ctx)
    elif kind == "Job":
        verdict = kinds.job_verdict(kinds.job_state(obj), fresh, ctx)
    else:
        verdict = kinds.pod_verdict(pods[0], ctx)
    return replace(verdict, resource=f"{kind}/{_meta(obj).get('name', '')}"), pods


def judge(target: Target, view: View, ctx: Context) -> Verdict:
    obj = (view.get(target.kind) or {}).get(target.name)
    if obj is None:
        return Verdict("progressing", f"waiting for {target.ref} to appear", resource=target.ref)
    return judge_object(target.kind, obj, view, ctx)[0]


def release_verdict(targets: Sequence[Target], view: View, ctx: Context) -> Verdict:
    """Every target judged: the first failure, else progressing while any is, else complete."""
    if not targets:
        return Verdict("complete", "no workloads in the release")
    verdicts = [judge(t, view, ctx) for t in targets]
    failed = next((v for v in verdicts if v.state == "failed"), None)
    if failed is not None:
        return failed
    waiting = [v for v in verdicts if v.state == "progressing"]
    if waiting:
        return replace(waiting[0], message="; ".join(f"{v.resource}: {v.message}" for v in waiting))
    return Verdict("complete", "; ".join(f"{v.resource}: {v.message}" for v in verdicts))


# --------------------------------------------------------------------------- helm hooks


def hooks_in(view: View, baseline: Iterable[str], since: float | None = None) -> list[Target]:
    """The hook Jobs and Pods (``helm.sh/hook``) of this helm run: not in ``baseline`` (the uids of the first
    listing), or created since helm started (``since``; helm may create one before that listing). A hook
    Job's pods are judged with their Job."""
    seen = set(baseline)
    found = []
    for kind in ("Job", "Pod"):
        for name, obj in sorted((view.get(kind) or {}).items()):
            meta = _meta(obj)
            created = timestamp(meta.get("creationTimestamp"))
            # creationTimestamp has whole seconds: a hook created just after ``since`` may read up to 1 s before
            new = meta.get("uid") not in seen or (since is not None and created is not None and created >= since - 1)
            is_hook = HOOK_ANNOTATION in (meta.get("annotations") or {})
            if is_hook and new and not (kind == "Pod" and _owner(obj) is not None):
                found.append(Target(kind, name))
    return found


def hook_failure(view: View, baseline: Iterable[str], ctx: Context) -> Verdict | None:
    """The first hook of this helm run (see ``hooks_in``; ``ctx.since``: when helm started) that failed, else
    None (a running or completed hook is helm's to wait for)."""
    for target in hooks_in(view, baseline, ctx.since):
        verdict = judge(target, view, ctx)
        if verdict.state == "failed":
            return replace(verdict, message=f"hook {target.ref}: {verdict.message}")
    return None


def uids(view: View, kinds_: Iterable[str] = ("Job", "Pod")) -> set[str]:
    return {str(_meta(o).get("uid")) for k in kinds_ for o in (view.get(k) or {}).values()}


# --------------------------------------------------------------------------- health of the live release


def release_objects(view: View, release: str) -> list[tuple[str, Mapping[str, Any]]]:
    """The release's workloads in a view: labelled with its instance, no hooks, no CronJob's Jobs, no owned Pods."""
    found = []
    for kind in WORKLOAD_KINDS:
        for _, obj in sorted((view.get(kind) or {}).items()):
            meta = _meta(obj)
            if (meta.get("labels") or {}).get(INSTANCE_LABEL) != release:
                continue
            if HOOK_ANNOTATION in (meta.get("annotations") or {}) or (kind in ("Job", "Pod") and _owner(obj)):
                continue
            found.append((kind, obj))
    return found


def desired_image(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    """The image a workload's pod template runs (first container), and the digest it pins."""
    template = _template(obj)
    containers = (template.get("spec") or {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    annotations = {**(_meta(obj).get("annotations") or {}), **(_meta(template).get("annotations") or {})}
    return image, digest_in(image) or annotations.get(DIGEST_ANNOTATION)


def health_of(kind: str, obj: Mapping[str, Any], view: View, ctx: Context) -> WorkloadHealth:
    """One workload as it runs now: what it should run, its verdict, which pods of which digest serve."""
    verdict, pods = judge_object(kind, obj, view, ctx)
    _, digest = desired_image(obj)
    held_back = 0
    if kind == "Deployment":
        desired = kinds.deployment_state(obj).replicas
    elif kind == "StatefulSet":
        state = kinds.statefulset_state(obj)
        desired, held_back = state.replicas - state.held_back, state.held_back
    elif kind == "DaemonSet":
        daemons = kinds.daemonset_state(obj)
        desired, held_back = daemons.desired - daemons.held_back, daemons.held_back
    elif kind == "Job":
        desired = kinds.job_state(obj).completions
    else:
        desired = 1
    counted = [p for p in pods if not p.deleting and (p.done if kind == "Job" else p.ready or p.done)]
    confirmed = sum(1 for p in counted if p.confirmed and p.digest == digest)
    name = str(_meta(obj).get("name", ""))
    return WorkloadHealth(
        kind, name, digest, desired, verdict, serving(pods, completed=kind == "Job"), held_back, confirmed
    )
