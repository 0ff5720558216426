"""Time to a verdict per failure class: ``deployctl deploy`` vs ``helm upgrade --install --wait --timeout 5m``
with helm 4 (kstatus watcher) and helm 3, same lab, same chart, same values, same image; and deployctl's
verdict lag: its verdict (the command's exit) minus the moment the cluster showed the decisive condition
(``bench.lag``: by the API's timestamp, and by the benchmark's own watch of the namespace).

Each class is made real in the lab's cluster (kwok markers in the repository name, or values no node can
satisfy: see tests/lab/test_rollout_kinds.py); every run installs into a namespace of its own, so no run
inherits another's pods. deployctl runs ``repeat`` rounds of every class; with ``--baseline REF`` the
baseline's deployctl runs beside this tree's, run by run, in alternating order. helm 4 runs beside them run by
run on the classes where it decides within seconds (``HELM_INTERLEAVED``); its other runs and helm 3's take up
to their 5-minute timeout each, so each runs once, all at the same time after deployctl's runs (they mostly
wait: the overlap costs a timeout nothing; ``BENCH_ROLLOUT_HELM=fast`` skips them).

A helm outcome is one of: ``failed`` (a verdict, with its time), ``timeout`` (no verdict: it waited its
5 minutes), ``succeeded`` (it reported success for a broken rollout: helm 3 does not wait for Jobs).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import labs
from bench.lag import Observer, decisive
from bench.measure import Sample, cpu_seconds, loadavg, say
from deployctl.core.errors import DeployctlError, ExitCode
from deployctl.sandbox import image_push

TARGET_LAG_P95 = 1.0  # seconds
HELM_TIMEOUT = "5m"
HELM_TIMEOUT_SECONDS = 300.0
TESTS = Path(__file__).resolve().parents[1] / "tests" / "lab" / "charts"
IMPOSSIBLE_NODE = {"nodeSelector": {"deployctl.dev/no-such-node": "true"}}
# The checkout's state bucket (labs.checkout creates it in moto): the lock and the ledger live there.
BACKEND = '{ bucket = "acme-api-tfstate", key = "dev/terraform.tfstate", region = "us-east-1" }'


@dataclass(frozen=True)
class Case:
    name: str
    chart: str  # "deployment" (the repository's chart) or a tests/lab/charts/ directory
    signal: str  # the decisive condition (``bench.lag.SIGNALS``)
    marker: str = ""  # the kwok marker in the repository name
    values: dict[str, Any] = field(default_factory=dict)
    migration: str = "migrate"  # the StatefulSet chart's migration image repository

    @property
    def repository(self) -> str:
        return f"{self.chart}-{self.marker}" if self.marker else self.chart


CASES = (
    Case("deployment crash loop", "deployment", "crash", "crashloop"),
    Case("deployment pull error", "deployment", "pull", "does-not-exist"),
    Case("deployment unschedulable", "deployment", "unschedulable", values=IMPOSSIBLE_NODE),
    Case("deployment never ready", "deployment", "never-ready", "never-ready"),
    Case("statefulset crash loop", "statefulset", "crash", "crashloop"),
    Case("statefulset pull error", "statefulset", "pull", "does-not-exist"),
    Case("daemonset never ready", "daemonset", "never-ready", "never-ready"),
    Case("job fails (exit 1)", "job", "job-failed", "exits-nonzero"),
    Case("pod crash loop", "pod", "crash", "crashloop"),
    Case("pod unschedulable", "pod", "unschedulable", values=IMPOSSIBLE_NODE),
    Case("pre-upgrade hook pull error", "statefulset", "pull", migration="migrate-does-not-exist"),
)
SMOKE = ("deployment crash loop", "statefulset crash loop")
# helm 4 decides these within seconds (a bare Pod's crash loop or Unschedulable, a Job's end: README, Benchmarks):
# timed beside deployctl, run by run. The others wait for helm's timeout or a 120 s progress deadline.
HELM_INTERLEAVED = ("job fails (exit 1)", "pod crash loop", "pod unschedulable")


@dataclass
class HelmRun:
    seconds: float = 0.0
    outcome: str = ""  # failed | timeout | succeeded
    said: str = ""  # helm's last line of output (what its verdict was)


@dataclass(frozen=True)
class Run:
    """One ``deployctl deploy`` of a broken release: its wall time, CPU (its process tree), verdict and lags."""

    seconds: float
    cpu: float
    reason: str
    lag_api: float | None  # verdict minus the API's timestamp of the decisive condition
    lag_seen: float | None  # verdict minus the moment the benchmark's watch saw it
    what: str


def chart_path(repo: labs.Checkout, case: Case) -> Path:
    return repo.root / "charts" / "api" if case.chart == "deployment" else TESTS / case.chart


def section(repo: labs.Checkout, case: Case, host: str, seed: int) -> dict[str, Any]:
    """The chart values of ``case`` (what deployctl reads from the app's section of the values file)."""
    values: dict[str, Any] = dict(case.values)
    if case.chart == "deployment":
        values = {**yaml.safe_load((repo.root / "values-dev.yaml").read_text())["api"], **values}
    if case.chart == "statefulset":
        digest = image_push.push_image(host, case.migration, "m", seed=seed).digest
        values["migration"] = {"repository": f"{host}/{case.migration}", "digest": digest}
    return values


def config(repo: labs.Checkout, case: Case, namespace: str, values: dict[str, Any]) -> Path:
    """A configuration with one app on ``case``'s chart, dev in ``namespace`` (the sandbox overlay points it at
    the lab: moto, the lab's registry and cluster; the state bucket is the checkout's)."""
    slug = namespace.replace("/", "-")
    (repo.root / f"values-{slug}.yaml").write_text(yaml.safe_dump({"api": values}))
    path = repo.root / f"bench-{slug}.toml"
    path.write_text(
        f"""[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{chart_path(repo, case)}"
release = "api"
image = {{ registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", repository = "{case.repository}" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "terraform/env", var_file = "terraform/env/dev.tfvars", backend = {BACKEND} }}
cluster = {{ eks = "api-dev" }}
namespace = "{slug}"
values = "values-{slug}.yaml"
"""
    )
    return path


def deploy(
    repo: labs.Checkout, lab: Any, case: Case, side: labs.Side, namespace: str, digest: str, values: dict[str, Any]
) -> Run:
    """``deployctl deploy dev`` of ``case`` into ``namespace`` (its own), watched by an ``Observer``; the lag
    from what the observer saw. The namespace is deleted afterwards (its pods would load the lab)."""
    path = config(repo, case, namespace, values)
    with Observer(lab.kubeconfig, lab.context, f"dev-{namespace}") as seen:
        before, started = cpu_seconds(), time.perf_counter()
        result = repo.deployctl(
            "--config", str(path), "deploy", "dev", "--digest", digest,
            ok_codes=(int(ExitCode.FAILED),), output_json=True, side=side,
        )  # fmt: skip
        verdict_at, seconds, cpu = time.time(), time.perf_counter() - started, cpu_seconds() - before
        time.sleep(0.2)  # the last changes before the verdict reach the observer
    found = decisive(case.signal, seen.seen, seen.events())
    lab.kube("DELETE", f"/api/v1/namespaces/dev-{namespace}")
    return Run(
        seconds,
        cpu,
        str(json.loads(result.stdout)["error"].get("reason")),
        verdict_at - found.api if found.api is not None else None,
        verdict_at - found.seen if found.seen is not None else None,
        found.what,
    )


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    cases = [c for c in CASES if not smoke or c.name in SMOKE]
    sides = labs.sides()
    ours: dict[tuple[str, str], list[Run]] = {(c.name, s.label): [] for c in cases for s in sides}
    helm: dict[tuple[str, int], list[HelmRun]] = {}
    loads = [loadavg()]
    with labs.started(["moto", "registry", "cluster"]) as lab, labs.checkout(lab) as repo:
        host = lab.registry_hosts[0]
        digests = {
            c.name: image_push.push_image(host, c.repository, "bad", seed=9000 + i).digest for i, c in enumerate(cases)
        }
        values = {c.name: section(repo, c, host, 9500 + i) for i, c in enumerate(cases)}
        for n in range(repeat):
            for index, case in enumerate(cases):
                for side in labs.alternate(sides, n + index):
                    say(f"rollout: {side.label} deploy dev ({case.name}, {n + 1}/{repeat}), load {loadavg()}")
                    namespace = f"b{index}r{n}{sides.index(side)}"
                    ours[(case.name, side.label)].append(
                        deploy(repo, lab, case, side, namespace, digests[case.name], values[case.name])
                    )
                if case.name in HELM_INTERLEAVED and not smoke:
                    say(f"rollout: helm 4 upgrade --wait ({case.name}, {n + 1}/{repeat})")
                    argv = helm_argv(repo, lab, case, 4, f"h4c{index}r{n}", values[case.name], host, digests[case.name])
                    helm.setdefault((case.name, 4), []).append(_time_helm(repo, argv, HelmRun()))
            loads.append(loadavg())
        if not smoke and os.environ.get("BENCH_ROLLOUT_HELM", "all") != "fast":
            say(f"rollout: helm 4 and helm 3 upgrade --install --wait --timeout {HELM_TIMEOUT}, every class at once")
            threads = []
            for index, case in enumerate(cases):
                for major in (4, 3):
                    if major == 4 and case.name in HELM_INTERLEAVED:
                        continue
                    run_ = HelmRun()
                    helm[(case.name, major)] = [run_]
                    argv = helm_argv(
                        repo, lab, case, major, f"h{major}c{index}", values[case.name], host, digests[case.name]
                    )
                    threads.append(threading.Thread(target=_time_helm, args=(repo, argv, run_), daemon=True))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    return samples(cases, sides, ours, helm, smoke, loads)


def helm_argv(
    repo: labs.Checkout,
    lab: Any,
    case: Case,
    major: int,
    namespace: str,
    values: dict[str, Any],
    host: str,
    digest: str,
) -> list[str]:
    values_file = repo.root / f"helm-{namespace}.yaml"
    values_file.write_text(yaml.safe_dump(values))
    return [
        "helm" if major == 4 else "helm3", "upgrade", "api", str(chart_path(repo, case)), "--install",
        "--namespace", namespace, "--create-namespace", "-f", str(values_file),
        "--set-string", f"image.repository={host}/{case.repository}", "--set-string", f"image.digest={digest}",
        "--kubeconfig", str(lab.kubeconfig), "--kube-context", lab.context, "--wait", "--timeout", HELM_TIMEOUT,
    ]  # fmt: skip


def _time_helm(repo: labs.Checkout, argv: list[str], into: HelmRun) -> HelmRun:
    started = time.perf_counter()
    try:
        result = repo.run(argv, ok_codes=(0, 1), timeout=HELM_TIMEOUT_SECONDS + 120)
    except DeployctlError as exc:  # another exit code, or our own timeout: say so in the table
        into.seconds, into.outcome = time.perf_counter() - started, f"error: {exc.message.splitlines()[0]}"
        return into
    into.seconds = time.perf_counter() - started
    lines = (result.stderr or result.stdout).strip().splitlines()
    into.said = lines[-1][:160] if lines else ""
    if result.exit_code == 0:
        into.outcome = "succeeded"
    elif into.seconds >= HELM_TIMEOUT_SECONDS - 1 or "context deadline exceeded" in result.stderr:
        into.outcome = "timeout"
    else:
        into.outcome = "failed"
    return into


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0-1) by linear interpolation between the closest ranks (few runs: p95 is near the max)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def samples(
    cases: Sequence[Case],
    sides: Sequence[labs.Side],
    ours: dict[tuple[str, str], list[Run]],
    helm: dict[tuple[str, int], list[HelmRun]],
    smoke: bool,
    loads: Sequence[float],
) -> list[Sample]:
    found = []
    for case in cases:
        h4 = helm.get((case.name, 4)) or []
        decided = [r.seconds for r in h4 if r.outcome == "failed"]
        for side in sides:
            runs = ours[(case.name, side.label)]
            lags = [r.lag_api for r in runs if r.lag_api is not None]
            seen = [r.lag_seen for r in runs if r.lag_seen is not None]
            extra: dict[str, Any] = {
                "verdict": "/".join(sorted({r.reason for r in runs})),
                "cpu_s": statistics.median(r.cpu for r in runs),
                "lag_p50": percentile(lags, 0.5) if lags else None,
                "lag_p95": percentile(lags, 0.95) if lags else None,
                "seen_lag_p50": percentile(seen, 0.5) if seen else None,
                "seen_lag_p95": percentile(seen, 0.95) if seen else None,
                "lags": [round(x, 2) for x in lags],
                "decisive": runs[0].what,
                "load": f"{min(loads):.1f}-{max(loads):.1f}",
            }
            median = statistics.median(r.seconds for r in runs)
            if decided:
                extra["vs_helm4"] = median / statistics.median(decided)
            met_lag = bool(lags) and percentile(lags, 0.95) <= TARGET_LAG_P95
            met_helm = not decided or median <= statistics.median(decided)
            extra["target"] = f"lag p95 <= {TARGET_LAG_P95}s: {'met' if met_lag else 'NOT met'}; " + (
                f"vs helm 4: {'met' if met_helm else 'NOT met'}" if decided else "helm 4 gives no verdict in seconds"
            )
            found.append(Sample("rollout", f"{case.name}: {side.label}", tuple(r.seconds for r in runs), extra))
        for major in (4, 3):
            runs_ = helm.get((case.name, major))
            subject = f"{case.name}: helm {major} --wait"
            if not runs_:
                reason = "smoke: minutes" if smoke else "not run"
                found.append(Sample.skipped("rollout", subject, reason))
            else:
                outcomes = "/".join(sorted({r.outcome for r in runs_}))
                extra = {"outcome": outcomes, "runs": len(runs_), "helm_said": runs_[-1].said}
                found.append(Sample("rollout", subject, tuple(r.seconds for r in runs_), extra))
    return found


def tables(found: Sequence[Sample]) -> list[str]:
    """Time to verdict and verdict lag per failure class, one row per class and deployctl (``make bench`` prints it
    after the others)."""
    rows = [s for s in found if s.benchmark == "rollout"]
    by_subject = {s.subject: s for s in rows}
    ours = [s for s in rows if ": deployctl" in s.subject]
    if not ours:
        return []

    def helm_cell(name: str, major: int) -> str:
        sample = by_subject.get(f"{name}: helm {major} --wait")
        if sample is None or not sample.times:
            return "-"
        outcome = sample.extra.get("outcome", "")
        return f"{sample.median:.1f}s {'' if outcome == 'failed' else outcome}".strip()

    def seconds(value: object) -> str:
        return f"{value:.2f}s" if isinstance(value, float) else "-"

    lines = [
        "",
        f"time to verdict and verdict lag per failure class (helm: upgrade --install --wait --timeout {HELM_TIMEOUT})",
        f"{'class':<30} {'side':<18} {'verdict':>8} {'lag p50':>8} {'lag p95':>8} {'seen p95':>9} {'cpu':>6} "
        f"{'helm 4':>16} {'helm 3':>16}  reason",
    ]
    for sample in ours:
        name, side = sample.subject.rsplit(": ", 1)
        e = sample.extra
        lines.append(
            f"{name:<30} {side:<18} {sample.median:>7.1f}s {seconds(e.get('lag_p50')):>8} "
            f"{seconds(e.get('lag_p95')):>8} {seconds(e.get('seen_lag_p95')):>9} {e.get('cpu_s', 0):>5.1f}s "
            f"{helm_cell(name, 4):>16} {helm_cell(name, 3):>16}  {e.get('verdict', '')}"
        )
    return lines
