"""What to judge in a namespace, pure: the workloads a release renders (or the hooks helm is running), which
pods belong to each (by owner references), which of them are the new revision's, and the verdict of each.

A ``View`` is the namespace as the watch (or one listing) sees it: kind -> name -> API object (dicts,
camelCase). The same functions serve the rollout watch, the hook watch, and ``status``' one snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from deployctl.adapters.kube.view import View
from deployctl.rollout.kinds import KINDS
from deployctl.rollout.kinds.common import metadata_of, owned_by
from deployctl.rollout.pods import PodState, digest_in, pod_state
from deployctl.rollout.signals import VerdictContext, tuning_from
from deployctl.rollout.states import DIGEST_ANNOTATION, Verdict, WorkloadHealth, serving

HOOK_ANNOTATION = "helm.sh/hook"


@dataclass(frozen=True)
class ManifestWorkload:
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
    from deployctl.core import manifests  # yaml: not for `deployctl --help`

    return [doc for doc in manifests.documents(manifest) if isinstance(doc, dict)]


def _autoscaled(docs: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], int]:
    """(kind, name) -> minReplicas of every HorizontalPodAutoscaler in ``docs`` (unset: 1, as the API defaults)."""
    found = {}
    for doc in docs:
        if doc.get("kind") == "HorizontalPodAutoscaler":
            spec = doc.get("spec") or {}
            ref = spec.get("scaleTargetRef") or {}
            found[(str(ref.get("kind", "")), str(ref.get("name", "")))] = int(spec.get("minReplicas") or 1)
    return found


def targets_in(manifest: str) -> list[ManifestWorkload]:
    """The workloads a rendered release manifest (multi-document YAML) rolls out, in manifest order: helm's own
    record of what the release owns, whatever the chart's labels (hooks are not in it: see ``hooks_in``)."""
    docs = _documents(manifest)
    scaled = _autoscaled(docs)
    found = []
    for doc in docs:
        meta = metadata_of(doc)
        if doc.get("kind") in KINDS and HOOK_ANNOTATION not in (meta.get("annotations") or {}):
            kind, name = str(doc["kind"]), str(meta.get("name", ""))
            found.append(ManifestWorkload(kind, name, desired_image(doc)[1], scaled.get((kind, name))))
    return found


def kinds_to_watch(targets: Iterable[ManifestWorkload]) -> set[str]:
    """The API kinds a view needs to judge ``targets`` (a Deployment's pods are found through ReplicaSets)."""
    wanted = {t.kind for t in targets} | {"Pod"}
    return wanted | {via for kind in wanted if kind in KINDS for via in KINDS[kind].via}


def _template(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod template of a workload (a bare Pod is its own)."""
    if obj.get("kind") == "Pod" or "containers" in (obj.get("spec") or {}):
        return obj
    return (obj.get("spec") or {}).get("template") or {}


def pods_of(kind: str, obj: Mapping[str, Any], view: View) -> list[PodState]:
    """Every pod of a workload, by controller owner uid (a Deployment's through its ReplicaSets)."""
    spec = KINDS[kind]
    if spec.own_pod:
        return [pod_state(obj)]
    return [pod_state(p) for owner in spec.owners(obj, view) for p in owned_by("Pod", owner, view)]


def new_pods(kind: str, obj: Mapping[str, Any], pods: Sequence[PodState], view: View) -> list[PodState]:
    """The pods created for the workload's current revision (each kind says which: ``kinds``). Terminating pods
    never decide a verdict: they are not judged."""
    return KINDS[kind].new_pods(obj, pods, view)


def context_for(obj: Mapping[str, Any], vctx: VerdictContext) -> VerdictContext:
    """``vctx`` with the tuning the workload's annotations (or its pod template's) ask for."""
    annotations = metadata_of(obj).get("annotations")
    template = metadata_of(_template(obj)).get("annotations")
    return replace(vctx, tuning=tuning_from(annotations, template, autoscaler=vctx.tuning.autoscaler))


def judge_object(
    kind: str, obj: Mapping[str, Any], view: View, vctx: VerdictContext, min_replicas: int | None = None
) -> tuple[Verdict, list[PodState]]:
    """The verdict of one live workload, and its pods (``min_replicas``: an HPA's, see ``ManifestWorkload``)."""
    vctx = context_for(obj, vctx)
    pods = pods_of(kind, obj, view)
    verdict = KINDS[kind].judge(obj, pods, new_pods(kind, obj, pods, view), vctx, min_replicas)
    return replace(verdict, resource=f"{kind}/{metadata_of(obj).get('name', '')}"), pods


def judge(target: ManifestWorkload, view: View, vctx: VerdictContext) -> Verdict:
    obj = (view.get(target.kind) or {}).get(target.name)
    if obj is None:
        return Verdict("progressing", f"waiting for {target.ref} to appear", resource=target.ref)
    if target.digest and desired_image(obj)[1] != target.digest:
        # the view still shows the spec before helm's change (a watch or list that has not caught up): what it
        # says of the old spec's rollout says nothing of this revision's (a stale "complete" was a false verdict)
        return Verdict("progressing", f"waiting for {target.ref} to show {target.digest}", resource=target.ref)
    return judge_object(target.kind, obj, view, vctx, target.min_replicas)[0]


def release_verdict(targets: Sequence[ManifestWorkload], view: View, vctx: VerdictContext) -> Verdict:
    """Every target judged: the first failure, else progressing while any is, else complete."""
    if not targets:
        return Verdict("complete", "no workloads in the release")
    verdicts = [judge(t, view, vctx) for t in targets]
    failed = next((v for v in verdicts if v.state == "failed"), None)
    if failed is not None:
        return failed
    waiting = [v for v in verdicts if v.state == "progressing"]
    if waiting:
        return replace(waiting[0], message="; ".join(f"{v.resource}: {v.message}" for v in waiting))
    return Verdict("complete", "; ".join(f"{v.resource}: {v.message}" for v in verdicts))


def desired_image(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    """The image a workload's pod template runs (first container), and the digest it pins."""
    template = _template(obj)
    containers = (template.get("spec") or {}).get("containers") or [{}]
    image = str(containers[0].get("image", ""))
    annotations = {**(metadata_of(obj).get("annotations") or {}), **(metadata_of(template).get("annotations") or {})}
    return image, digest_in(image) or annotations.get(DIGEST_ANNOTATION)


def health_of(
    kind: str, obj: Mapping[str, Any], view: View, vctx: VerdictContext, target: ManifestWorkload | None = None
) -> WorkloadHealth:
    """One workload as it runs now: what the release's revision asks of it (``target``, from its manifest; else its
    live spec), its verdict, which pods of which digest serve. A live spec that does not pin what the revision does
    was never applied (a hook failed before helm applied it, or someone changed it by hand): that is a failure."""
    min_replicas = target.min_replicas if target is not None else None
    verdict, pods = judge_object(kind, obj, view, vctx, min_replicas)
    _, applied = desired_image(obj)
    digest = target.digest if target is not None and target.digest else applied
    if applied != digest:
        verdict = Verdict(
            "failed",
            f"{kind.lower()} {metadata_of(obj).get('name', '')} runs {applied or 'an unpinned image'}: the release's "
            f"{digest} was never applied to it",
            reason="NotApplied",
            resource=verdict.resource,
        )
    desired, held_back = KINDS[kind].desired(obj)
    if min_replicas is not None:
        desired = min_replicas  # the HPA moves the replicas: its floor is what must run the digest
    completes = KINDS[kind].runs_to_completion  # a Job's pods count when done, not when ready
    counted = [p for p in pods if not p.deleting and (p.done if completes else p.ready or p.done)]
    confirmed = sum(1 for p in counted if p.confirmed and p.digest == digest)
    name = str(metadata_of(obj).get("name", ""))
    return WorkloadHealth(
        kind,
        name,
        digest,
        desired,
        verdict,
        serving(pods, completed=completes),
        held_back,
        confirmed,
        autoscaled=min_replicas,
        terminating=sum(1 for p in pods if p.deleting),
    )
