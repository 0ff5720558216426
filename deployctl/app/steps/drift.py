"""An environment's drift: the chart rendered with its values vs the live objects, per cluster."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from deployctl.app.context import EnvContext
from deployctl.core.refs import ImageRef
from deployctl.release import chartvalues, drift, image_check
from deployctl.release.manifest_diff import compare
from deployctl.rollout.results import ClustersDiff

if TYPE_CHECKING:
    from pathlib import Path

    from deployctl.config import App
    from deployctl.rollout.cluster import ClusterClient
from deployctl.release.drift import PLACEHOLDER_DIGEST, AppDiff, Candidate, ImageChange


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
                    app_drift(
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


def app_drift(
    cluster: ClusterClient,
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
