"""What looking up one release costs in a namespace shared by many (issue 29): every rollout asks helm for its
release's newest revision. ``helm list --filter ^NAME$`` decodes every revision of every release in the namespace
before it filters; ``helm history NAME --max 1`` (what deployctl runs) reads that release's revisions only.

``APPS`` releases of the repository's ``charts/api`` (each revision's secret holds the chart and its manifest, as a
team's do), upgraded ``REVISIONS`` times each (helm keeps them all: its default ``--history-max`` is 10), in the
lab's API server; then both lookups of one release, interleaved, with helm 4.
"""

from __future__ import annotations

import statistics
import time

from bench import labs
from bench.measure import Sample, loadavg, say
from deployctl.runner import ProcessRunner

APPS, REVISIONS = 15, 10
NAMESPACE = "bench-helm-lookup"
CHART = labs.REPO / "charts" / "api"


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    apps, revisions = (3, 2) if smoke else (APPS, REVISIONS)
    with labs.started(["cluster"]) as lab:
        runner = ProcessRunner(base_env=labs.tool_env(lab))
        kube = ["--kubeconfig", str(lab.kubeconfig), "--namespace", NAMESPACE]
        say(f"helm_lookup: {apps} releases x {revisions} revisions")
        for revision in range(revisions):
            for app in range(apps):
                release = f"app{app:02d}"
                values = ["--set-string", f"image.tag=r{revision}", "--set", "podDisruptionBudget.enabled=false"]
                argv = ["helm", "upgrade", "--install", release, str(CHART), "--create-namespace", *kube, *values]
                runner.run(argv)
        lookups = {
            "helm list --filter": ["helm", "list", "--filter", "^app00$", "--output", "json", *kube],
            "helm history --max 1": ["helm", "history", "app00", "--max", "1", "--output", "json", *kube],
        }
        times: dict[str, list[float]] = {name: [] for name in lookups}
        load = loadavg()
        for n in range(repeat):
            for name in sorted(lookups, reverse=n % 2 == 1):  # which goes first alternates
                started = time.perf_counter()
                runner.run(lookups[name])
                times[name].append(time.perf_counter() - started)
    listed = statistics.median(times["helm list --filter"])
    history = statistics.median(times["helm history --max 1"])
    where = f"one release among {apps} x {revisions} revisions"
    extra = {"load": load, "secrets": apps * revisions}
    return [
        Sample("helm_lookup", f"helm list --filter ({where})", tuple(times["helm list --filter"]), extra),
        Sample(
            "helm_lookup",
            f"helm history --max 1 ({where})",
            tuple(times["helm history --max 1"]),
            {**extra, "vs_list": history / listed},
        ),
    ]
