"""An environment's drift: the chart rendered with its values vs the live objects, per cluster."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import yaml

from deployctl.app.context import EnvContext
from deployctl.release import drift
from deployctl.rollout.results import ClustersDiff


def environment_drift(
    ctx: EnvContext,
    app: str | None = None,
    *,
    digest: str | None = None,
    candidates: Mapping[str, drift.Candidate] | None = None,
) -> drift.DiffResult:
    """Every app's chart (or one) against the live objects of ``ctx``'s cluster (of each of its clusters:
    ``ClustersDiff``); ``candidates`` (``plan``): the image a deploy would roll out per app, where it exists."""
    values = ctx.values
    values.require()
    apps = ctx.config.settings.apps
    found: list[tuple[str, int, drift.DiffResult]] = []
    with ctx.clusters() as clusters, tempfile.TemporaryDirectory(prefix="deployctl-diff-") as workdir:
        for target in ctx.targets():
            results = []
            for name, config in ctx.apps(app):
                section = values.section(name, apps)
                section_file = Path(workdir) / f"{name}-values.yaml"
                section_file.write_text(yaml.safe_dump(section, sort_keys=False))
                chart, version = ctx.chart(name, config)
                results.append(
                    drift.app_drift(
                        clusters[target.name],
                        name,
                        config,
                        chart=chart,
                        chart_version=version,
                        section=section,
                        section_file=section_file,
                        workdir=Path(workdir),
                        repository=ctx.image(config, target=target),
                        digest=digest,
                        candidate=(candidates or {}).get(name),
                    )
                )
            found.append((str(target.name), target.wave, drift.DiffResult(env=ctx.name, apps=tuple(results))))
    return found[0][2] if not ctx.several else ClustersDiff.of(ctx.name, found)
