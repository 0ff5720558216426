"""Whether a rendered chart runs the image a rollout pins, pure: read before anything is deployed.

``image_values`` maps the image onto chart keys. A chart whose keys the mapping misses (a StatefulSet taking
``image: "repo@digest"`` as one string while the mapping sets ``image.repository``/``image.digest``) renders
its own default image, and the rollout would run it without a word. So every workload of the rendered
manifest (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod, a CronJob's job template) must have a
container (not only an init container) whose image is pinned at the digest. Helm hooks are left out: a
migration Job may run an image of its own. Other containers of a workload that runs the digest (sidecars)
are allowed and listed. A manifest with no such workload (custom resources only) has nothing to check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deployctl.core import manifests
from deployctl.core.errors import UsageError

HOOK = "helm.sh/hook"
# kind -> the path from the object to its pod spec
POD_SPEC: Mapping[str, tuple[str, ...]] = {
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


@dataclass(frozen=True)
class Container:
    """A container of a rendered workload: its name and image."""

    name: str
    image: str


@dataclass(frozen=True)
class Workload:
    """A workload a rendered chart holds, with its containers (hooks aside)."""

    kind: str
    name: str
    containers: tuple[Container, ...]  # ``containers``, not ``initContainers``

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class ImageCheck:
    """What the rendered workloads run, against ``digest``."""

    digest: str
    missing: tuple[Workload, ...]  # no container runs the digest
    others: tuple[tuple[Workload, Container], ...]  # containers on another image, beside one that runs the digest

    @property
    def ok(self) -> bool:
        return not self.missing

    def problem(self, app: str, keys: Mapping[str, str]) -> str:
        """Why ``app``'s chart does not run the digest: the workloads, what they run instead, the keys set."""
        found = "; ".join(
            f"{w.ref} runs {', '.join(f'{c.image} (container {c.name})' for c in w.containers) or 'no container'}"
            for w in self.missing
        )
        return (
            f"{app}: the chart does not run the pinned image {self.digest}: {found}. "
            f"The keys set (apps.{app}.image_values): {_keys(keys)}"
        )

    def sidecars(self) -> tuple[str, ...]:
        """One line per container that runs another image beside the digest's (``Deployment/api: log (img)``)."""
        return tuple(f"{w.ref}: container {c.name} runs {c.image}" for w, c in self.others)

    def data(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "missing": [{"workload": w.ref, "images": {c.name: c.image for c in w.containers}} for w in self.missing],
            "other_images": [{"workload": w.ref, "container": c.name, "image": c.image} for w, c in self.others],
        }


def hint(app: str) -> str:
    """How to tell deployctl the keys an app's chart reads its image from (``apps.NAME.image_values``)."""
    return (
        f"set apps.{app}.image_values to the keys the chart reads, e.g. "
        '{ image = "{registry}/{repository}@{digest}" } for a chart that takes the image as one string '
        "(README: Configuration); `helm template` shows what the chart renders"
    )


def workloads(manifest: str) -> list[Workload]:
    """The workloads of a rendered manifest (hooks left out), each with its containers' images."""
    found = []
    for doc in manifests.documents(manifest):
        if not isinstance(doc, dict) or str(doc.get("kind")) not in POD_SPEC:
            continue
        meta = doc.get("metadata") or {}
        if HOOK in (meta.get("annotations") or {}):
            continue
        spec: Any = doc
        for key in POD_SPEC[str(doc["kind"])]:
            spec = spec.get(key) if isinstance(spec, dict) else None
        containers = spec.get("containers") if isinstance(spec, dict) else None
        images = tuple(
            Container(str(c.get("name", "")), str(c.get("image", ""))) for c in containers or () if isinstance(c, dict)
        )
        found.append(Workload(str(doc["kind"]), str(meta.get("name", "")), images))
    return found


def runs(image: str, digest: str) -> bool:
    """Whether an image reference is pinned at ``digest`` (``repo@sha256:...``, ``repo:tag@sha256:...``)."""
    return "@" in image and image.rpartition("@")[2] == digest


def check(manifest: str, digest: str) -> ImageCheck:
    """Whether every workload of a rendered manifest runs ``digest`` (the others' containers listed apart)."""
    found = workloads(manifest)
    missing = tuple(w for w in found if not any(runs(c.image, digest) for c in w.containers))
    others = tuple((w, c) for w in found if w not in missing for c in w.containers if not runs(c.image, digest))
    return ImageCheck(digest, missing, others)


def require(
    manifest: str, app: str, digest: str, keys: Mapping[str, str], *, say: Callable[[str], None] | None = None
) -> ImageCheck:
    """``check``, refusing (exit 2) a manifest with a workload that does not run ``digest``; ``say``: each
    container that runs another image beside it (a sidecar: allowed)."""
    found = check(manifest, digest)
    if not found.ok:
        raise UsageError(found.problem(app, keys), hint(app), details={"image_check": found.data()})
    for line in found.sidecars():
        if say is not None:
            say(f"  {app}: {line} (beside {digest[:19]}, allowed)")
    return found


def _keys(keys: Mapping[str, str]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in keys.items()) or "none"
