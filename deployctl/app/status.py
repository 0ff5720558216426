"""``deployctl status ENV``: what runs, per app, judged by the one definition of healthy.

For each app: the helm release (revision, status), each workload's rollout verdict from one
snapshot of the cluster (what the spec asks for, which pods serve and with which digest), and
whether the desired digest is the one the values file pins. A rollout that failed or is still
in progress is reported as such, never as "ready" because the previous ReplicaSet's pods are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.app.steps.freeze import freeze_state
from deployctl.ledger import labels
from deployctl.ledger.audit import LedgerProblem, LedgerRead
from deployctl.ledger.entry import open_intents
from deployctl.promotion.evidence import run_of
from deployctl.release import chartvalues
from deployctl.release.windows import FreezeState
from deployctl.rollout.states import Health, WorkloadHealth, release_health

# An app's status as ``-o json`` shows it first, in this order.
_SHOWN = ("app", "release", "namespace", "installed", "revision", "helm_status", "digest", "tag", "git_sha")


@dataclass(frozen=True)
class AppStatus:
    """One app of an environment (in one cluster) as it runs now: helm's release, its workloads, its health."""

    app: str
    release: str
    namespace: str
    installed: bool
    revision: int | None
    helm_status: str | None
    digest: str | None  # what the workloads' spec asks for
    tag: str | None
    git_sha: str | None
    workloads: tuple[WorkloadHealth, ...]
    values_digest: str | None
    health: Health
    hooks: tuple[str, ...] = ()  # the hooks of helm's latest revision that failed, with why
    unfinished: tuple[str, ...] = ()  # rollouts the ledger shows started and not completed
    cluster: str | None = None  # one of the environment's several clusters (None: its one cluster)
    wave: int = 1

    @property
    def healthy(self) -> bool:
        return self.health.healthy

    @property
    def matches_values(self) -> bool | None:
        """None: the values file pins no digest (dev)."""
        return (self.digest == self.values_digest) if self.values_digest else None

    def data(self) -> dict[str, Any]:
        return {
            **({"cluster": self.cluster, "wave": self.wave} if self.cluster else {}),
            **{name: getattr(self, name) for name in _SHOWN},
            "desired": sum(w.desired for w in self.workloads),
            "ready": sum(w.ready_desired for w in self.workloads),
            "workloads": [
                {
                    "kind": w.kind,
                    "name": w.name,
                    "desired_digest": w.desired_digest,
                    "desired": w.desired,
                    "ready": w.ready_desired,
                    "rollout": w.verdict.state,
                    "message": w.verdict.message,
                    "reason": w.verdict.reason,
                    "serving": [{"digest": d, "pods": n} for d, n in w.serving],
                    "terminating": w.terminating,
                    **({"autoscaled_min_replicas": w.autoscaled} if w.autoscaled is not None else {}),
                }
                for w in self.workloads
            ],
            "values_digest": self.values_digest,
            "matches_values": self.matches_values,
            "healthy": self.healthy,
            "problems": list(self.health.reasons),
            "failed_hooks": list(self.hooks),
            "unfinished": list(self.unfinished),
        }

    def text(self) -> list[str]:
        namespace = f"{self.namespace} of cluster {self.cluster} (wave {self.wave})" if self.cluster else self.namespace
        if not self.installed:
            return [f"{self.app}: release {self.release} is not installed in {namespace}"]
        verdict = "healthy" if self.healthy else "NOT HEALTHY"
        where = f"revision {self.revision} {self.helm_status} in {namespace}"
        lines = [f"{self.app}: release {self.release} {where}: {verdict}"]
        revision = f" (revision {self.revision}, {self.helm_status})" if self.helm_status != "deployed" else ""
        lines.append(f"  digest  {self.digest or '?'}" + (f"  (tag {self.tag})" if self.tag else "") + revision)
        lines.append(f"  commit  {self.git_sha or '?'}")
        lines += [f"  hook    {hook}" for hook in self.hooks]
        for w in self.workloads:
            floor = f" (HPA minReplicas {w.autoscaled})" if w.autoscaled is not None else ""
            lines.append(
                f"  {w.kind.lower()} {w.name}: rollout {w.verdict.state}, "
                f"{w.ready_desired}/{w.desired} pods of the desired digest ready{floor}"
            )
            if w.verdict.state != "complete" or "scaling" in w.verdict.message:
                lines.append(f"    {w.verdict.summary}")
            for digest, count in w.serving:
                if digest != w.desired_digest:
                    lines.append(f"    serving now: {count} pod(s) of {digest or 'an unpinned image'}")
            if w.terminating:
                lines.append(f"    {w.terminating} pod(s) terminating (not judged)")
        if self.matches_values is not None:
            state = "matches" if self.matches_values else f"DIFFERS from {self.values_digest}"
            lines.append(f"  values  {state} (values file image.digest)")
        shown = [r for r in self.health.reasons if ": rollout " in r or r.startswith("hook ")]  # in the lines above
        lines += [f"  problem {reason}" for reason in self.health.reasons if reason not in shown]
        lines += [f"  unfinished {item}" for item in self.unfinished]
        return lines


@dataclass(frozen=True)
class StatusResult:
    """What ``deployctl status`` found in the environment: each app, the freeze in force, the drift."""

    env: str
    apps: tuple[AppStatus, ...]
    freeze: FreezeState | None = None  # None: a window of the configuration cannot be (warned)
    command: str = "status"
    ledger_problems: tuple[LedgerProblem, ...] = ()  # what is wrong with its ledger, by key (also on stderr)

    @property
    def healthy(self) -> bool:
        return all(a.healthy for a in self.apps)

    def data(self) -> Mapping[str, Any]:
        freeze = self.freeze.data() if self.freeze else None
        return {
            "env": self.env,
            "healthy": self.healthy,
            "freeze": freeze,
            "apps": [a.data() for a in self.apps],
            "ledger_problems": [p.data() for p in self.ledger_problems],
        }

    def text(self) -> Sequence[str]:
        frozen = [f"{self.env}: {self.freeze.describe()}"] if self.freeze and self.freeze.frozen else []
        return frozen + [line for a in self.apps for line in a.text()]


def status(ctx: EnvContext, app: str | None = None) -> StatusResult:
    """Each app of the environment as it runs now, judged by the one definition of healthy."""
    ctx.require_deployable()
    apps = ctx.config.settings.apps
    found = []
    with ctx.clusters() as clusters:
        seen = []
        for target, app_name, app_config in [(t, n, c) for t in ctx.targets() for n, c in ctx.apps(app)]:
            cluster = clusters[target.name]
            live = cluster.live(app_config.release)
            found_workloads = live.workloads if live is not None else ()
            # what helm's latest revision asks for
            digest = found_workloads[0].health.desired_digest if found_workloads else None
            seen.append((target, app_name, app_config, cluster, live, digest))
        ledger = _ledger(ctx, [(name, digest) for _, name, _, _, _, digest in seen])
        intents = open_intents(ledger.entries)
        # a chart that carries no provenance annotations: the tag and commit the ledger recorded with the digest
        recorded: dict[tuple[str, str | None], tuple[str | None, str | None]] = {}
        for entry in reversed(ledger.entries):  # oldest first: the newest entry of a digest wins
            if entry.digest and (entry.tag or entry.commit):
                recorded[(entry.app, entry.digest)] = (entry.tag, entry.commit)
        for target, app_name, app_config, cluster, live, digest in seen:
            pinned = chartvalues.pinned(app_config, ctx.values.section(app_name, apps)) if ctx.values.exists() else {}
            values_digest = pinned.get("digest")
            release = live.release if live is not None else None
            found_workloads = live.workloads if live is not None else ()
            first = found_workloads[0] if found_workloads else None
            workloads = tuple(w.health for w in found_workloads)
            # Healthy also means "runs what the values file pins" when it pins something (prod).
            health = live.health(values_digest or None) if live is not None else release_health(None, (), None)
            found.append(
                AppStatus(
                    app=app_name,
                    release=app_config.release,
                    namespace=cluster.namespace,
                    installed=release is not None,
                    revision=release.revision if release else None,
                    helm_status=release.status if release else None,
                    digest=digest,
                    tag=(first.tag if first else None) or recorded.get((app_name, digest), (None, None))[0],
                    git_sha=(first.git_sha if first else None) or recorded.get((app_name, digest), (None, None))[1],
                    workloads=workloads,
                    values_digest=values_digest,
                    health=health,
                    hooks=tuple(h.message for h in live.failed_hooks) if live is not None else (),
                    unfinished=tuple(
                        f"{i.action} of {i.digest} started {i.at} by {run_of(i)}: no outcome yet (in progress, or "
                        "its run died: the next deploy settles it)"
                        for i in intents
                        if i.app == app_name and i.cluster == target.name
                    ),
                    cluster=target.name,
                    wave=target.wave,
                )
            )
    return StatusResult(env=ctx.name, apps=tuple(found), freeze=freeze_state(ctx), ledger_problems=ledger.problems)


def _ledger(ctx: EnvContext, running: Sequence[tuple[str, str | None]]) -> LedgerRead:
    """What status reads of the ledger: each app's open intents and the entries of the digest it runs (their tag
    and commit). An environment without a state bucket has no ledger (its problems are said on stderr)."""
    if ctx.env.terraform is None:
        return LedgerRead([])
    asked = [labels.of_apps([name], digest=digest) for name, digest in running if digest]
    opened = [labels.open_intents(name) for name in dict.fromkeys(name for name, _ in running)]
    return ctx.read_ledger(question=labels.either(*opened, *asked))
