"""Rendered manifests against live objects, pure: the documents of a manifest, the live object reduced to what the
chart sets (server-set fields dropped, Secrets masked), and a unified diff."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from deployctl.core import manifests

DROPPED_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")


DROPPED_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")


@dataclass(frozen=True)
class ObjectDiff:
    """One rendered object compared with the live one: unchanged, changed (its unified diff), added or removed."""

    api_version: str
    kind: str
    name: str
    namespace: str | None
    change: str  # unchanged | changed | added | removed
    diff: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def documents(manifest: str) -> list[dict[str, Any]]:
    """The objects of a manifest, hooks left out: helm runs them around an upgrade (and may delete them after),
    they are not state the release keeps."""
    return [
        d
        for d in manifests.documents(manifest)
        if isinstance(d, dict)
        and d.get("kind")
        and "helm.sh/hook" not in ((d.get("metadata") or {}).get("annotations") or {})
    ]


def compare(
    rendered: str, installed: str, namespace: str, get: Callable[[str, str, str, str | None], Any]
) -> list[ObjectDiff]:
    """Diff every rendered object against ``get(api_version, kind, name, namespace)`` (None: absent)."""
    out = []
    seen = set()
    for doc in documents(rendered):
        api_version, kind = str(doc["apiVersion"]), str(doc["kind"])
        meta = doc.get("metadata") or {}
        name = str(meta.get("name", ""))
        ns = meta.get("namespace") or namespace
        seen.add((api_version, kind, name))
        live = get(api_version, kind, name, ns)
        if live is None:
            out.append(ObjectDiff(api_version, kind, name, ns, "added", tuple(unified({}, doc, f"{kind}/{name}"))))
            continue
        wanted = mask_secret(omit_empty_absent(doc, live))
        actual = mask_secret(project(normalize(live), wanted))
        lines = tuple(unified(actual, wanted, f"{kind}/{name}"))
        out.append(ObjectDiff(api_version, kind, name, ns, "changed" if lines else "unchanged", lines))
    for doc in documents(installed):
        api_version, kind = str(doc["apiVersion"]), str(doc["kind"])
        meta = doc.get("metadata") or {}
        name = str(meta.get("name", ""))
        if (api_version, kind, name) not in seen:
            ns = meta.get("namespace") or namespace
            if get(api_version, kind, name, ns) is not None:
                out.append(ObjectDiff(api_version, kind, name, ns, "removed", ()))
    return out


def normalize(live: Mapping[str, Any]) -> dict[str, Any]:
    """Drop what the server fills in: status, bookkeeping metadata, revision annotations."""
    obj = {k: v for k, v in live.items() if k != "status"}
    meta = dict(obj.get("metadata") or {})
    for key in DROPPED_METADATA:
        meta.pop(key, None)
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in DROPPED_ANNOTATIONS}
    if annotations:
        meta["annotations"] = annotations
    else:
        meta.pop("annotations", None)
    obj["metadata"] = meta
    return obj


def project(live: Any, wanted: Any) -> Any:
    """``live`` reduced to the fields present in ``wanted`` (lists of equal length element-wise)."""
    if isinstance(wanted, Mapping) and isinstance(live, Mapping):
        return {k: project(live[k], v) for k, v in wanted.items() if k in live}
    if isinstance(wanted, list) and isinstance(live, list) and len(wanted) == len(live):
        return [project(a, b) for a, b in zip(live, wanted, strict=True)]
    return live


def omit_empty_absent(wanted: Any, live: Any) -> Any:
    """``wanted`` without the empty values (``{}``, ``[]``, null) that ``live`` does not have: the API server omits
    an empty optional field (a ConfigMap's ``data: {}`` reads back without ``data``), which is no drift."""
    if isinstance(wanted, Mapping) and isinstance(live, Mapping):
        return {k: omit_empty_absent(v, live.get(k)) for k, v in wanted.items() if k in live or v not in ({}, [], None)}
    if isinstance(wanted, list) and isinstance(live, list) and len(wanted) == len(live):
        return [omit_empty_absent(a, b) for a, b in zip(wanted, live, strict=True)]
    return wanted


def mask_secret(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Secret values replaced by a short fingerprint: a change shows, the value does not."""
    out = dict(obj)
    if out.get("kind") != "Secret":
        return out
    for field_name in ("data", "stringData"):
        data = out.get(field_name)
        if isinstance(data, Mapping):
            out[field_name] = {
                k: f"*** (sha256:{hashlib.sha256(str(v).encode()).hexdigest()[:8]})" for k, v in data.items()
            }
    return out


def unified(live: Mapping[str, Any], wanted: Mapping[str, Any], label: str) -> list[str]:
    """``live`` -> ``wanted`` as a unified diff of canonical YAML (empty when equal)."""
    a = _canonical(live) if live else []
    b = _canonical(wanted)
    if a == b:
        return []
    return [line.rstrip("\n") for line in difflib.unified_diff(a, b, f"live/{label}", f"chart/{label}", n=3)]


def _canonical(obj: Mapping[str, Any]) -> list[str]:
    return yaml.safe_dump(_stringify_numbers(obj), sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def _stringify_numbers(obj: Any) -> Any:
    # The API answers 1 where the chart may say "1" (quantities such as cpu): compare them as the same
    # value, shown the way YAML shows a number.
    if isinstance(obj, Mapping):
        return {str(k): _stringify_numbers(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_stringify_numbers(v) for v in obj]
    if isinstance(obj, str) and obj.isdigit() and (obj == "0" or not obj.startswith("0")):
        return int(obj)
    return obj
