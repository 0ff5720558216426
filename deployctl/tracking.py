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
View = Mapping[str, Mapping[str, Mapping[str, Any]]]  # kind -> name -> object


@dataclass(frozen=True)
class Target:
    """A workload the release's manifest rolls out: what its pod template pins there (``digest``), and the
    ``minReplicas`` of an HPA of the release that scales it (None: no HPA)."""

    kind: str
    name: str
    digest: str | None = None
    min_replicas: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def _documents(manifest: str) -> list[Mapping[str, Any]]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10x faster on a release's manifest
    return [doc for doc in yaml.load_all(manifest, Loader=loader) if isinstance(doc, dict)]


def _autoscaled(docs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """(kind, name) -> minReplicas of every HorizontalPodAutoscaler in ``docs`` (unset: 1, as the API defaults)."""
    found = {}
    for doc in docs:
        if doc.get("kind") == "HorizontalPodAutoscaler":
            spec = doc.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            found[(str(ref.get("kind", "")), str(ref.get("name", "")))] = int(spec.get("minReplicas") or 1)
    return found


def targets_in(manifest: str) -> list[Target]:
    """The workloads a rendered release manifest (multi-document YAML) rolls out, in manifest order: helm's own
    record of what the release owns, whatever the chart's labels (hooks are not in it: see ``hooks_in``)."""
    docs = _documents(manifest)
    scaled = _autoscaled(docs)
    found = []
    for doc in docs:
        meta = _meta(doc)
        if doc.get("kind") in WORKLOAD_KINDS and HOOK_ANNOTATION not in (meta.get("annotations") or {}):
            kind, name = str(doc["kind"]), str(meta.get("name", ""))
            found.append(Target(kind, name, desired_image(doc)[1], scaled.get((kind, name))))
    return found


def kinds_to_watch(targets: Iterable[Target]) -> set[str]:
    """The API kinds a view needs to judge ``targets`` (a Deployment's pods are found through ReplicaSets)."""
    wanted = {t.kind for t in targets} | {"Pod"}
    if "Deployment" in wanted:
        wanted.add("ReplicaSet")
    return wanted


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def _uid(obj: Mapping[str, Any]) -> str:
    return str(_meta(obj).get("uid") or "")


def _owner_uid(obj: Mapping[str, Any]) -> str | None:
    owner = next((o for o in _meta(obj).get("ownerReferences") or () if o.get("controller")), None)
    return str(owner.get("uid") or "") if owner else None


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template of a workload (a bare Pod is its own)."""
    if obj.get("kind") == "Pod" or "containers" in (obj.get("spec") or {}):
        return obj
    return (obj.get("spec") or {}).get("template") or {}


def _owned_by(kind: str, owner: Mapping[str, Any], view: View) -> list[Mapping[str, Any]]:
    """The objects of ``kind`` in ``view`` whose controller is ``owner``, by uid: helm re-creates a hook Job under
    the same name while the old Job's pods are still terminating, and those are another owner's."""
    uid = _uid(owner)
    return [o for o in (view.get(kind) or {}).values() if uid and _owner_uid(o) == uid]


def _replica_sets(obj: Mapping[str, Any], view: View) -> list[Mapping[str, Any]]:
    return _owned_by("ReplicaSet", obj, view)


def pods_of(kind: str, obj: Mapping[str, Any], view: View) -> list[PodState]:
    """Every pod of a workload, by controller owner uid (a Deployment's through its ReplicaSets)."""
    if kind == "Pod":
        return [pod_state(obj)]
    owners = [obj] if kind != "Deployment" else _replica_sets(obj, view)
    return [pod_state(p) for owner in owners for p in _owned_by("Pod", owner, view)]


def new_pods(kind: str, obj: Mapping[str, Any], pods: Sequence[PodState], view: View) -> list[PodState]:
    """The pods created for the workload's current revision: a Deployment's of the ReplicaSet of its revision
    (and that ReplicaSet's ``pod-template-hash``), a StatefulSet's of its ``updateRevision``, a DaemonSet's of its
    generation, a Job's (its own, by uid). Terminating pods never decide a verdict: they are not judged."""
    meta, status = _meta(obj), obj.get("status") or {}
    live = [p for p in pods if not p.deleting]
    if kind == "Deployment":
        revision = (meta.get("annotations") or {}).get(REVISION_ANNOTATION)
        current = {
            (_uid(rs), str((_meta(rs).get("labels") or {}).get("pod-template-hash", "")))
            for rs in _replica_sets(obj, view)
            if revision and (_meta(rs).get("annotations") or {}).get(REVISION_ANNOTATION) == revision
        }
        return [p for p in live if (p.owner_uid, p.template_hash) in current]
    if kind == "StatefulSet":
        return [p for p in live if p.label("controller-revision-hash") == status.get("updateRevision")]
    if kind == "DaemonSet":
        return [p for p in live if p.label("pod-template-generation") == str(meta.get("generation"))]
    return live


def context_for(obj: Mapping[str, Any], ctx: Context) -> Context:
    """``ctx`` with the tuning the workload's annotations (or its pod template's) ask for."""
    annotations = _meta(obj).get("annotations")
    template = _meta(_template(obj)).get("annotations")
    return replace(ctx, tuning=tuning_from(annotations, template, autoscaler=ctx.tuning.autoscaler))


def judge_object(
    kind: str, obj: Mapping[str, Any], view: View, ctx: Context, min_replicas: int | None = None
) -> tuple[Verdict, list[PodState]]:
    """The verdict of one live workload, and its pods (``min_replicas``: an HPA's, see ``Target``)."""
    ctx = context_for(obj, ctx)
    pods = pods_of(kind, obj, view)
    fresh = new_pods(kind, obj, pods, view)
    if kind == "Deployment":
        verdict = kinds.verdict_of(kinds.deployment_state(obj), fresh, ctx, min_replicas=min_replicas)
    elif kind == "StatefulSet":
        verdict = kinds.statefulset_verdict(kinds.statefulset_state(obj), fresh, ctx, min_replicas=min_replicas)
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
    return judge_object(target.kind, obj, view, ctx, target.min_replicas)[0]


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
            if is_hook and new and not (kind == "Pod" and _owner_uid(obj) is not None):
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


def hook_verdicts(hooks: Iterable[tuple[str, str, str]], view: View, ctx: Context) -> list[Verdict]:
    """The hooks of a release revision that failed: ``hooks`` are helm's record of them (kind, name, the phase of
    their last run); a hook helm saw fail, or whose live object fails now while helm says it still runs (helm was
    stopped), judged from the cluster when it is still there."""
    failed = []
    for kind, name, phase in hooks:
        if kind not in ("Job", "Pod") or phase == "Succeeded":
            continue
        obj = (view.get(kind) or {}).get(name)
        verdict = judge_object(kind, obj, view, ctx)[0] if obj is not None else None
        if phase == "Failed" or (verdict is not None and verdict.state == "failed"):
            if verdict is None or verdict.state != "failed":
                verdict = Verdict("failed", f"helm recorded its last run as {phase}", resource=f"{kind}/{name}")
            failed.append(replace(verdict, message=f"hook {kind}/{name} failed: {verdict.message}"))
    return failed


def desired_image(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    """The image a workload's pod template runs (first container), and the digest it pins."""
    template = _template(obj)
    containers = (template.get("spec") or {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    annotations = {**(_meta(obj).get("annotations") or {}), **(_meta(template).get("annotations") or {})}
    return image, digest_in(image) or annotations.get(DIGEST_ANNOTATION)


def health_of(
    kind: str, obj: Mapping[str, Any], view: View, ctx: Context, target: Target | None = None
) -> WorkloadHealth:
    """One workload as it runs now: what the release's revision asks of it (``target``, from its manifest; else its
    live spec), its verdict, which pods of which digest serve. A live spec that does not pin what the revision does
    was never applied (a hook failed before helm applied it, or someone changed it by hand): that is a failure."""
    min_replicas = target.min_replicas if target is not None else None
    verdict, pods = judge_object(kind, obj, view, ctx, min_replicas)
    _, applied = desired_image(obj)
    digest = target.digest if target is not None and target.digest else applied
    if applied != digest:
        verdict = Verdict(
            "failed",
            f"{kind.lower()} {_meta(obj).get('name', '')} runs {applied or 'an unpinned image'}: the release's "
            f"{digest} was never applied to it",
            reason="NotApplied",
            resource=verdict.resource,
        )
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
    if min_replicas is not None:
        desired = min_replicas  # the HPA moves the replicas: its floor is what must run the digest
    counted = [p for p in pods if not p.deleting and (p.done if kind == "Job" else p.ready or p.done)]
    confirmed = sum(1 for p in counted if p.confirmed and p.digest == digest)
    name = str(_meta(obj).get("name", ""))
    return WorkloadHealth(
        kind,
        name,
        digest,
        desired,
        verdict,
        serving(pods, completed=kind == "Job"),
        held_back,
        confirmed,
        autoscaled=min_replicas,
        terminating=sum(1 for p in pods if p.deleting),
    )
