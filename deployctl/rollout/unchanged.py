"""Whether a rollout would change a release at all, pure (``app.redeploy`` reads the release and acts on this).

Re-running a deploy of what already runs must change nothing: no helm revision, no restarted pod, no re-run
migration hook. A release is unchanged when it is ``deployed``, from the same chart (name and version), with
exactly the values this rollout would give helm (its values files merged the way helm merges ``-f`` files),
the chart renders the same objects (a local chart edited without a version bump renders others), and the live
objects are still what the chart says (a Deployment scaled by hand is drift a deploy restores).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from deployctl.core import manifests

HOOK = "helm.sh/hook"


def merged(documents: Sequence[Mapping[str, Any] | None]) -> dict[str, Any]:
    """Values files as helm merges ``-f a -f b``: a later file wins, mappings are merged key by key."""
    out: dict[str, Any] = {}
    for doc in documents:
        out = _merge(out, doc or {})
    return out


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = _merge(result[key], value)
        else:
            result[key] = value
    return result


def objects(manifest: str) -> list[str]:
    """A manifest's objects without hooks (helm keeps those out of the release's manifest), each as canonical
    JSON, sorted: two renderings of the same objects compare equal whatever their order and layout."""
    docs = [d for d in manifests.documents(manifest) if isinstance(d, dict) and d.get("kind")]
    kept = [d for d in docs if HOOK not in ((d.get("metadata") or {}).get("annotations") or {})]
    return sorted(json.dumps(d, sort_keys=True, default=str) for d in kept)


def difference(
    *,
    status: str,
    chart: str,
    planned_chart: str,
    values: Callable[[], Mapping[str, Any]],
    planned_values: Mapping[str, Any],
    manifest: Callable[[], str],
    planned_manifest: str,
    drifted: Callable[[], Sequence[str]],
) -> str | None:
    """Why the release needs a new revision (None: it is unchanged). ``chart``: helm's ``NAME-VERSION``;
    ``values`` and ``manifest`` (the release's), and ``drifted`` (the live objects that differ from the chart, e.g.
    scaled by hand: an upgrade restores them) are read only when what comes before them is the same."""
    if status != "deployed":
        return f"the release is {status or 'not installed'}"
    if chart != planned_chart:
        return f"the chart changes ({chart or '?'} -> {planned_chart})"
    if _plain(values()) != _plain(planned_values):
        return "the values change"
    if objects(manifest()) != objects(planned_manifest):
        return "the chart renders other objects"
    changed = drifted()
    if changed:
        return f"live objects differ from the chart ({', '.join(changed)}): a new revision restores them"
    return None


def _plain(values: Mapping[str, Any]) -> Any:
    """Values as JSON reads them back (``helm get values -o json``): numbers, strings, lists and mappings."""
    return json.loads(json.dumps(values, sort_keys=True, default=str))
