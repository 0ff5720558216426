"""A release's promotion as shown before anything changes (text and JSON), and its result. Pure.

One release tag promotes every app: each app has its facts, gates, target image and transfer; the
release has one commit, one values-file diff and one changelog.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployctl.core.refs import ImageRef, ReleaseTag
from deployctl.promotion.facts import Facts, Gate

if TYPE_CHECKING:
    from deployctl.adapters.registry import TransferReport
    from deployctl.release.changelog import Changelog


@dataclass(frozen=True)
class AppPromotion:
    app: str
    facts: Facts
    gates: tuple[Gate, ...]
    target_image: ImageRef  # repository + release tag + digest
    transfer: str  # ecr-retag | oci-retag | copy | noop | skipped
    helm: str

    @property
    def digest(self) -> str:
        return self.facts.source_digest or ""

    @property
    def skipped(self) -> bool:
        return self.facts.skipped

    @property
    def noop(self) -> bool:
        return self.facts.done

    def data(self) -> dict[str, Any]:
        f = self.facts
        return {
            "app": self.app,
            "digest": f.source_digest,
            "skipped": self.skipped,
            "noop": self.noop,
            "source": {"image": f"{f.source_image.name}:{f.source_image.tag}"},
            "target": {
                "image": str(self.target_image),
                "current_version": str(f.target_version) if f.target_version else None,
                "current_digest": f.target_digest,
                **({"clusters_behind": list(f.behind)} if f.behind else {}),
                **({"cluster_registries": dict(f.regional_tags)} if f.regional_tags else {}),
            },
            "transfer": self.transfer,
            "evidence": f.evidence.data() if f.evidence else None,
            "gates": [g.data() for g in self.gates],
            "helm": self.helm,
        }

    def text(self) -> list[str]:
        f = self.facts
        if self.skipped:
            return [f"  {self.app}: not rebuilt for this commit (optional): keeps {f.target_digest or 'what it runs'}"]
        lines = [
            f"  {self.app}" + (" (already done)" if self.noop else ""),
            f"    digest   {f.source_digest}",
            f"    from     {f.source_image.name}:{f.source_image.tag}",
            f"    to       {self.target_image.name}:{self.target_image.tag} ({self.transfer})",
            f"    replaces {f.target_version or 'nothing'} ({f.target_digest or 'no digest'}, from {f.target_from})",
        ]
        lines += [
            f"    copy to  {registry}/{self.target_image.repository} (a cluster's own)"
            for registry, _ in f.regional_tags
        ]
        if f.behind:
            lines.append(f"    behind   {', '.join(f.behind)} (do not run {f.target_digest})")
        if f.evidence is not None:
            lines.append(f"    evidence {f.evidence.describe()}")
        lines.append(f"    helm     {self.helm}")
        return lines


@dataclass(frozen=True)
class PromotionPlan:
    release: ReleaseTag
    commit: str
    source_env: str
    target_env: str
    apps: tuple[AppPromotion, ...]
    values_path: Path
    values_diff: str
    changelog: Changelog | None = None
    clusters: tuple[tuple[str, int], ...] = ()  # several target clusters: (name, wave) in rollout order

    @property
    def gates(self) -> tuple[Gate, ...]:
        return tuple(g for a in self.apps for g in a.gates)

    @property
    def noop(self) -> bool:
        """Done already: every app runs its digest there (or is not part of this commit)."""
        return all(a.noop or a.skipped for a in self.apps) and any(a.noop for a in self.apps)

    def app(self, name: str) -> AppPromotion:
        return next(a for a in self.apps if a.app == name)

    def data(self) -> dict[str, Any]:
        return {
            "release": self.release.tag,
            "version": str(self.release.version),
            "commit": self.commit,
            "source_env": self.source_env,
            "target_env": self.target_env,
            "apps": [a.data() for a in self.apps],
            "gates": [g.data() for g in self.gates],
            "changes": self.changelog.data() if self.changelog else None,
            "values": {"path": str(self.values_path), "diff": self.values_diff},
            "noop": self.noop,
            **({"clusters": [{"cluster": c, "wave": w} for c, w in self.clusters]} if self.clusters else {}),
        }

    def text(self) -> list[str]:
        done = " (already done: nothing to change)" if self.noop else ""
        lines = [f"promote {self.release} to {self.target_env}{done}", f"  commit   {self.commit}"]
        if self.clusters:
            waves = sorted({w for _, w in self.clusters})
            lines.append(
                "  waves    " + "; ".join(f"{w}: " + ", ".join(c for c, x in self.clusters if x == w) for w in waves)
            )
        for app in self.apps:
            lines += app.text()
        if self.changelog is not None:
            lines += self.changelog.text()
            lines += [f"  warning  {w}" for w in self.changelog.warnings]
        lines.append("  checks:")
        for g in self.gates:
            mark = "ok  " if g.ok else ("OVR " if g.overridden else "FAIL")
            lines.append(f"    {mark} {g.app + ' ' if g.app else ''}{g.name}: {g.message}")
        lines.append(f"  values   {self.values_path.name}: " + ("unchanged" if not self.values_diff else "will change"))
        lines.extend("    " + line for line in self.values_diff.rstrip("\n").splitlines())
        return lines


@dataclass(frozen=True)
class PromotionStep:
    name: str
    status: str  # done | noop | skipped | failed
    detail: str = ""


@dataclass(frozen=True)
class PromoteResult:
    plan: PromotionPlan
    dry_run: bool
    outcome: str  # planned | succeeded | moved (--no-deploy: the image moved and recorded, not deployed) | noop
    steps: tuple[PromotionStep, ...] = ()
    transfers: tuple[TransferReport, ...] = ()
    commit: str | None = None
    command: str = "promote"

    def data(self) -> Mapping[str, Any]:
        return {
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "plan": self.plan.data(),
            "steps": [{"name": s.name, "status": s.status, "detail": s.detail} for s in self.steps],
            "transfers": [t.data() for t in self.transfers],
            "values_commit": self.commit,
        }

    def text(self) -> Sequence[str]:
        lines = list(self.plan.text())
        if self.dry_run:
            lines.append("dry run: nothing was changed")
            return lines
        for step in self.steps:
            lines.append(f"{step.status:>8} {step.name}" + (f": {step.detail}" if step.detail else ""))
        digests = ", ".join(f"{a.app} {a.digest}" for a in self.plan.apps if not a.skipped)
        lines.append(f"{self.outcome}: {self.plan.release} -> {self.plan.target_env} ({digests})")
        return lines


def transfer_detail(report: TransferReport) -> str:
    if report.mode == "copy":
        return (
            f"copy: {report.blobs_copied} blobs copied ({report.bytes_copied} bytes), {report.blobs_mounted} mounted, "
            f"{report.blobs_present} already there, {report.manifests_put} manifests, "
            f"{len(report.referrers)} referrers ({report.referrers_copied} copied), {report.seconds:.2f}s"
        )
    return f"{report.mode}: {report.manifests_put} manifest(s), {report.seconds:.2f}s"


def helm_summary(facts: Facts, deploy: bool, env: str, namespace: str) -> str:
    if facts.skipped:
        return "nothing (not part of this commit)"
    if not deploy:
        return f"not deployed (--no-deploy): run `deployctl deploy {env}` or promote again later"
    if facts.done:
        return "nothing (already running, healthy)"
    return f"helm upgrade --install into {namespace} pinned to {facts.source_digest}"


def merged(logs: list[Changelog]) -> Changelog:
    """One changelog whose commits carry a failure in the source from any app."""
    first = logs[0]
    found = [
        next((c2 for lg in logs for c2 in lg.changes if c2.sha == c.sha and c2.failed_in_source), c)
        for c in first.changes
    ]
    return replace(first, changes=tuple(found))
