"""Drift: the chart rendered with an environment's values against the LIVE objects in its cluster.

Each rendered object is read from the cluster, server-populated fields are dropped, and only
the fields the chart sets are compared (a subset comparison, so API defaults do not show).
Secret values are masked. Drift made by hand (``kubectl scale``) shows up here. ``diff`` and
``plan`` both use ``app_drift``.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

from deployctl import chartvalues, image_check
from deployctl.model import ImageRef

# The safe loader, in C when PyYAML has libyaml (~10x faster on a release's manifest: its CPU counted per app).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

if TYPE_CHECKING:
    from pathlib import Path

    from deployctl.cluster import Cluster
    from deployctl.config import App
    from deployctl.windows import FreezeState

DROPPED_METADATA = ("managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink")
DROPPED_ANNOTATIONS = ("deployment.kubernetes.io/revision", "kubectl.kubernetes.io/last-applied-configuration")
PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


@dataclass(frozen=True)
class ObjectDiff:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    change: str  # unchanged | changed | added | removed
    diff: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class Candidate:
    """The image a deploy of this commit would roll out (``plan``): found in the registry, or why not."""

    source: str  # "commit 1a2b3c4d5e6f", "--image-tag v1"
    image: ImageRef | None = None  # with its digest; None: there is no such image (yet)
    git_sha: str | None = None
    problem: str = ""  # why it could not be looked up


@dataclass(frozen=True)
class ImageChange:
    """The image the live release runs and the one the diff renders, and where that one comes from."""

    live: str | None  # the live release's digest (None: not installed)
    rendered: str
    source: str  # the values file, the live release, a commit's image, --digest, a placeholder
    note: str = ""

    def data(self) -> dict[str, str | None]:
        return {"live": self.live, "rendered": self.rendered, "from": self.source, "note": self.note or None}

    def text(self) -> str:
        change = f"{self.live} -> {self.rendered}" if self.live != self.rendered else f"{self.rendered} (unchanged)"
        return f"  image: {change} from {self.source}" + (f"; {self.note}" if self.note else "")


@dataclass(frozen=True)
class AppDiff:
    app: str
    release: str
    namespace: str
    installed: bool
    image_values: Mapping[str, str]
    objects: tuple[ObjectDiff, ...]
    image: ImageChange | None = None
    problem: str = ""  # a workload the chart renders does not run the image (a deploy refuses it: image_check)

    @property
    def changed(self) -> bool:
        return any(o.change != "unchanged" for o in self.objects)


@dataclass(frozen=True)
class DiffResult:
    env: str
    apps: tuple[AppDiff, ...]
    color: bool = False
    freeze: FreezeState | None = None  # ``diff`` says whether a deploy would be refused now
    command: str = "diff"

    @property
    def changed(self) -> bool:
        return any(a.changed for a in self.apps)

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "changed": self.changed,
            "freeze": self.freeze.data() if self.freeze else None,
            "apps": [
                {
                    "app": a.app,
                    "release": a.release,
                    "namespace": a.namespace,
                    "installed": a.installed,
                    "image_values": dict(a.image_values),
                    "image": a.image.data() if a.image else None,
                    "problem": a.problem or None,
                    "objects": [
                        {
                            "api_version": o.api_version,
                            "kind": o.kind,
                            "name": o.name,
                            "namespace": o.namespace,
                            "change": o.change,
                            "diff": list(o.diff),
                        }
                        for o in a.objects
                    ],
                }
                for a in self.apps
            ],
        }

    def text(self) -> Sequence[str]:
        lines = [f"{self.env}: {self.freeze.describe()}"] if self.freeze and self.freeze.frozen else []
        for a in self.apps:
            counts = {c: sum(1 for o in a.objects if o.change == c) for c in ("changed", "added", "removed")}
            summary = ", ".join(f"{n} {c}" for c, n in counts.items() if n) or "no changes"
            state = "" if a.installed else " (not installed)"
            lines.append(f"{a.app}: release {a.release} in {a.namespace}{state}: {summary}")
            if a.image is not None and (a.image.live != a.image.rendered or a.image.note):
                lines.append(a.image.text())
            if a.problem:
                lines.append(self._paint(f"  problem: {a.problem}", "31"))
            for o in a.objects:
                if o.change == "unchanged":
                    continue
                lines.append(self._paint(f"{o.change}: {o.ref}", "33"))
                lines += [self._paint_diff(line) for line in o.diff]
        return lines

    def _paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def _paint_diff(self, line: str) -> str:
        if line.startswith(("+++", "---")):
            return self._paint(line, "1")
        if line.startswith("+"):
            return self._paint(line, "32")
        if line.startswith("-"):
            return self._paint(line, "31")
        if line.startswith("@@"):
            return self._paint(line, "36")
        return line


def app_drift(
    cluster: Cluster,
    app_name: str,
    app: App,
    *,
    chart: str,
    chart_version: str | None,
    section: Mapping[str, Any],
    section_file: Path,
    workdir: Path,
    repository: ImageRef,
    digest: str | None = None,
    candidate: Candidate | None = None,
) -> AppDiff:
    """Render ``app``'s chart with the values a deploy would use and compare it with the live objects.

    The image: what the app's values section pins (prod), else the ``candidate`` a deploy of this commit would
    roll out (``plan``), else what the live release was given, else a placeholder digest so an app never
    installed still renders; ``digest`` overrides them."""
    current = cluster.release(app.release)
    live_parts = chartvalues.pinned(app, cluster.release_values(app.release)) if current is not None else {}
    pinned = chartvalues.pinned(app, section)
    parts = {**live_parts, **pinned}
    source = "the values file" if pinned.get("digest") else "the live release" if live_parts.get("digest") else ""
    note = ""
    if candidate is not None and not pinned.get("digest"):
        found = candidate.image
        if found is not None and found.digest:
            parts = {"digest": found.digest, "tag": found.tag or "", "git_sha": candidate.git_sha or ""}
            source = f"{candidate.source} ({found.name}:{found.tag})"
        else:
            note = candidate.problem or f"no image for {candidate.source} yet (CI builds one per commit on main)"
    if digest:
        parts, source = {**parts, "digest": digest}, "--digest"
    chosen = parts.get("digest") or PLACEHOLDER_DIGEST
    image = ImageRef(repository.registry, repository.repository, tag=parts.get("tag") or None, digest=chosen)
    pins = chartvalues.image_values(app, image, parts.get("git_sha") or None)
    pins_file = workdir / f"{app_name}-image.yaml"
    pins_file.write_text(yaml.safe_dump(chartvalues.nested(pins)))
    rendered = cluster.template(
        release=app.release, chart=chart, values_files=[section_file, pins_file], set_string={}, version=chart_version
    )
    installed = cluster.release_manifest(app.release) if current is not None else ""
    objects = compare(rendered, installed, cluster.namespace, cluster.reader().get)
    change = ImageChange(live_parts.get("digest"), chosen, source or "a placeholder (never deployed)", note)
    reach = image_check.check(rendered, chosen)
    problem = "" if reach.ok else f"{reach.problem(app_name, pins)}; a deploy refuses it: {image_check.hint(app_name)}"
    installed_now = current is not None
    return AppDiff(app_name, app.release, cluster.namespace, installed_now, pins, tuple(objects), change, problem)


def documents(manifest: str) -> list[dict[str, Any]]:
    """The objects of a manifest, hooks left out: helm runs them around an upgrade (and may delete them after),
    they are not state the release keeps."""
    return [
        d
        for d in yaml.load_all(manifest, Loader=_LOADER)
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
