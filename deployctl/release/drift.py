"""Drift: the chart rendered with an environment's values against the LIVE objects in its cluster.

Each rendered object is read from the cluster, server-populated fields are dropped, and only
the fields the chart sets are compared (a subset comparison, so API defaults do not show).
Secret values are masked. Drift made by hand (``kubectl scale``) shows up here. ``diff`` and
``plan`` both use ``app_drift``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployctl.core.refs import ImageRef
from deployctl.release.manifest_diff import ObjectDiff

if TYPE_CHECKING:
    from deployctl.release.windows import FreezeState

PLACEHOLDER_DIGEST = "sha256:" + "0" * 64


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
