"""A release's helm hooks, judged like its workloads: the hook Jobs and Pods of this run, and the first that failed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from deployctl.adapters.kube.view import View
from deployctl.rollout.kinds.common import metadata_of, owner_uid
from deployctl.rollout.pods import timestamp
from deployctl.rollout.signals import VerdictContext
from deployctl.rollout.states import Verdict
from deployctl.rollout.tracking import HOOK_ANNOTATION, ManifestWorkload, judge, judge_object


def hooks_in(view: View, baseline: Iterable[str], since: float | None = None) -> list[ManifestWorkload]:
    """The hook Jobs and Pods (``helm.sh/hook``) of this helm run: not in ``baseline`` (the uids of the first
    listing), or created since helm started (``since``; helm may create one before that listing). A hook
    Job's pods are judged with their Job."""
    seen = set(baseline)
    found = []
    for kind in ("Job", "Pod"):
        for name, obj in sorted((view.get(kind) or {}).items()):
            meta = metadata_of(obj)
            created = timestamp(meta.get("creationTimestamp"))
            # creationTimestamp has whole seconds: a hook created just after ``since`` may read up to 1 s before
            new = meta.get("uid") not in seen or (since is not None and created is not None and created >= since - 1)
            is_hook = HOOK_ANNOTATION in (meta.get("annotations") or {})
            if is_hook and new and not (kind == "Pod" and owner_uid(obj) is not None):
                found.append(ManifestWorkload(kind, name))
    return found


def hook_failure(view: View, baseline: Iterable[str], vctx: VerdictContext) -> Verdict | None:
    """The first hook of this helm run (see ``hooks_in``; ``vctx.since``: when helm started) that failed, else
    None (a running or completed hook is helm's to wait for)."""
    for target in hooks_in(view, baseline, vctx.since):
        verdict = judge(target, view, vctx)
        if verdict.state == "failed":
            return replace(verdict, message=f"hook {target.ref}: {verdict.message}")
    return None


def uids(view: View, kinds_: Iterable[str] = ("Job", "Pod")) -> set[str]:
    return {str(metadata_of(o).get("uid")) for k in kinds_ for o in (view.get(k) or {}).values()}


def hook_verdicts(hooks: Iterable[tuple[str, str, str]], view: View, vctx: VerdictContext) -> list[Verdict]:
    """The hooks of a release revision that failed: ``hooks`` are helm's record of them (kind, name, the phase of
    their last run); a hook helm saw fail, or whose live object fails now while helm says it still runs (helm was
    stopped), judged from the cluster when it is still there."""
    failed = []
    for kind, name, phase in hooks:
        if kind not in ("Job", "Pod") or phase == "Succeeded":
            continue
        obj = (view.get(kind) or {}).get(name)
        verdict = judge_object(kind, obj, view, vctx)[0] if obj is not None else None
        if phase == "Failed" or (verdict is not None and verdict.state == "failed"):
            if verdict is None or verdict.state != "failed":
                verdict = Verdict("failed", f"helm recorded its last run as {phase}", resource=f"{kind}/{name}")
            failed.append(replace(verdict, message=f"hook {kind}/{name} failed: {verdict.message}"))
    return failed
