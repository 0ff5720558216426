"""The promotion gate's live look at the source: does it still run the digest, and is it healthy now?

The ledger says when a digest rolled out healthy; it cannot say that its pods crashed since. When the source still
runs the digest, the gate judges it now with the same definition of healthy as ``status`` (``rollout.release_health``
through ``Cluster.live``); when it runs another, the ledger's record of the digest's period is what counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployctl.app.context import EnvContext
from deployctl.config import App
from deployctl.rollout import waves


@dataclass(frozen=True)
class SourceLive:
    """What the source's clusters (the first wave's, with several) run of an app now."""

    runs: bool  # every judged cluster's release asks for the digest
    problems: tuple[str, ...] = ()  # why it is not healthy now, per cluster (empty: healthy, or it does not run it)
    elsewhere: tuple[str, ...] = ()  # clusters whose release asks for another digest (or has none): what they run
    proof: str = ""  # what was checked when healthy

    @property
    def healthy(self) -> bool:
        return self.runs and not self.problems


def source_live(source: EnvContext, app: App, digest: str) -> SourceLive | None:
    """Judge ``app`` in ``source``'s cluster(s) now for ``digest``; None when the source has no cluster."""
    if not source.env.deployable:
        return None
    wave = set(waves.first_wave(source.env))
    targets = [t for t in source.targets() if not wave or t.name in wave]
    problems: list[str] = []
    elsewhere: list[str] = []
    proofs: list[str] = []
    with source.clusters() as clusters:
        for target in targets:
            where = f"{source.name} (cluster {target.name})" if target.name else source.name
            live = clusters[target.name].live(app.release)
            asks = live.workloads[0].health.desired_digest if live is not None and live.workloads else None
            if live is None or asks != digest:
                elsewhere.append(f"{where} runs {asks or 'nothing'}")
                continue
            health = live.health(digest)
            if health.healthy:
                proofs.append(f"{where}: {health.proof}")
            else:
                problems.append(f"{where}: {health.summary}")
    runs = not elsewhere
    return SourceLive(runs, tuple(problems), tuple(elsewhere), "; ".join(proofs))
