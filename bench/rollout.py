"""Time to a verdict per failure class: ``deployctl deploy`` vs ``helm upgrade --install --wait --timeout 5m``
with helm 4 (kstatus watcher) and helm 3, same lab, same chart, same values, same image.

Each class is made real in the lab's cluster (kwok markers in the repository name, or values no node can
satisfy: see tests/lab/test_rollout_kinds.py); every run installs into a namespace of its own, so no run
inherits another's pods. deployctl runs ``repeat`` times, one class after the other. helm's runs take up
to their 5-minute timeout each, so each runs once, all classes at the same time after deployctl's runs
(they mostly wait: the overlap costs a timeout nothing).

A helm outcome is one of: ``failed`` (a verdict, with its time), ``timeout`` (no verdict: it waited its
5 minutes), ``succeeded`` (it reported success for a broken rollout: helm 3 does not wait for Jobs).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import labs
from bench.measure import Sample, say
from deployctl.core.errors import DeployctlError, ExitCode
from deployctl.sandbox import image_push

TARGET_SPEEDUP = 20.0
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
    marker: str = ""  # the kwok marker in the repository name
    values: dict[str, Any] = field(default_factory=dict)
    migration: str = "migrate"  # the StatefulSet chart's migration image repository

    @property
    def repository(self) -> str:
        return f"{self.chart}-{self.marker}" if self.marker else self.chart


CASES = (
    Case("deployment crash loop", "deployment", "crashloop"),
    Case("deployment pull error", "deployment", "does-not-exist"),
    Case("deployment unschedulable", "deployment", values=IMPOSSIBLE_NODE),
    Case("deployment never ready", "deployment", "never-ready"),
    Case("statefulset crash loop", "statefulset", "crashloop"),
    Case("statefulset pull error", "statefulset", "does-not-exist"),
    Case("daemonset never ready", "daemonset", "never-ready"),
    Case("job fails (exit 1)", "job", "exits-nonzero"),
    Case("pod crash loop", "pod", "crashloop"),
    Case("pod unschedulable", "pod", values=IMPOSSIBLE_NODE),
    Case("pre-upgrade hook pull error", "statefulset", migration="migrate-does-not-exist"),
)
SMOKE = ("deployment crash loop", "statefulset crash loop")


@dataclass
class HelmRun:
    seconds: float = 0.0
    outcome: str = ""  # failed | timeout | succeeded
    said: str = ""  # helm's last line of output (what its verdict was)


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


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    cases = [c for c in CASES if not smoke or c.name in SMOKE]
    ours: dict[str, list[float]] = {c.name: [] for c in cases}
    reasons: dict[str, set[str]] = {c.name: set() for c in cases}
    helm: dict[tuple[str, int], HelmRun] = {}
    with labs.started(["moto", "registry", "cluster"]) as lab, labs.checkout(lab) as repo:
        host = lab.registry_hosts[0]
        for index, case in enumerate(cases):
            digest = image_push.push_image(host, case.repository, "bad", seed=9000 + index).digest
            for n in range(repeat):
                namespace = f"b{index}r{n}"
                path = config(repo, case, namespace, section(repo, case, host, 9500 + index))
                say(f"rollout: deployctl deploy dev ({case.name}, {n + 1}/{repeat})")
                started = time.perf_counter()
                result = repo.deployctl(
                    "--config", str(path), "deploy", "dev", "--digest", digest,
                    ok_codes=(int(ExitCode.FAILED),), output_json=True,
                )  # fmt: skip
                ours[case.name].append(time.perf_counter() - started)
                reasons[case.name].add(str(json.loads(result.stdout)["error"].get("reason")))
                lab.kube("DELETE", f"/api/v1/namespaces/dev-{namespace}")  # its pods would load the lab
        if not smoke:
            say(f"rollout: helm 4 and helm 3 upgrade --install --wait --timeout {HELM_TIMEOUT}, every class at once")
            threads = []
            for index, case in enumerate(cases):
                digest = image_push.push_image(host, case.repository, "bad", seed=9000 + index).digest
                values = section(repo, case, host, 9500 + index)
                for major in (4, 3):
                    run_ = helm[(case.name, major)] = HelmRun()
                    argv = helm_argv(repo, lab, case, major, f"h{major}c{index}", values, host, digest)
                    threads.append(threading.Thread(target=_time_helm, args=(repo, argv, run_), daemon=True))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
    return samples(cases, ours, reasons, helm, smoke)


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


def _time_helm(repo: labs.Checkout, argv: list[str], into: HelmRun) -> None:
    started = time.perf_counter()
    try:
        result = repo.run(argv, ok_codes=(0, 1), timeout=HELM_TIMEOUT_SECONDS + 120)
    except DeployctlError as exc:  # another exit code, or our own timeout: say so in the table
        into.seconds, into.outcome = time.perf_counter() - started, f"error: {exc.message.splitlines()[0]}"
        return
    into.seconds = time.perf_counter() - started
    lines = (result.stderr or result.stdout).strip().splitlines()
    into.said = lines[-1][:160] if lines else ""
    if result.exit_code == 0:
        into.outcome = "succeeded"
    elif into.seconds >= HELM_TIMEOUT_SECONDS - 1 or "context deadline exceeded" in result.stderr:
        into.outcome = "timeout"
    else:
        into.outcome = "failed"


def samples(
    cases: Sequence[Case],
    ours: dict[str, list[float]],
    reasons: dict[str, set[str]],
    helm: dict[tuple[str, int], HelmRun],
    smoke: bool,
) -> list[Sample]:
    found = []
    for case in cases:
        median = statistics.median(ours[case.name])
        extra: dict[str, Any] = {"verdict": "/".join(sorted(reasons[case.name]))}
        h4 = helm.get((case.name, 4))
        if h4 is not None and h4.outcome == "failed":
            extra["speedup_vs_helm4"] = h4.seconds / median
            extra["target"] = "met" if h4.seconds / median >= TARGET_SPEEDUP else f"NOT met (>= {TARGET_SPEEDUP:.0f}x)"
        elif h4 is not None:
            extra["target"] = f"met: a verdict where helm 4 gives none ({h4.outcome})"
        found.append(Sample("rollout", f"{case.name}: deployctl", tuple(ours[case.name]), extra))
        for major in (4, 3):
            run_ = helm.get((case.name, major))
            subject = f"{case.name}: helm {major} --wait"
            if run_ is None:
                reason = "smoke: minutes" if smoke else "not run"
                found.append(Sample.skipped("rollout", subject, reason))
            else:
                extra = {"outcome": run_.outcome, "runs": 1, "helm_said": run_.said}
                found.append(Sample("rollout", subject, (run_.seconds,), extra))
    return found


def tables(found: Sequence[Sample]) -> list[str]:
    """Time to verdict per failure class, one row per class (``make bench`` prints it after the others)."""
    rows = [s for s in found if s.benchmark == "rollout"]
    by_subject = {s.subject: s for s in rows}
    names = [s.subject.rsplit(": ", 1)[0] for s in rows if s.subject.endswith(": deployctl")]
    if not names:
        return []

    def helm_cell(name: str, major: int) -> str:
        sample = by_subject.get(f"{name}: helm {major} --wait")
        if sample is None or not sample.times:
            return "-"
        outcome = sample.extra.get("outcome", "")
        return f"{sample.median:.1f}s {'' if outcome == 'failed' else outcome}".strip()

    lines = [
        "",
        f"time to verdict per failure class (helm: upgrade --install --wait --timeout {HELM_TIMEOUT})",
        f"{'class':<30} {'deployctl':>10} {'helm 4':>16} {'helm 3':>16} {'vs helm 4':>10}  verdict",
    ]
    for name in names:
        ours = by_subject[f"{name}: deployctl"]
        speedup = ours.extra.get("speedup_vs_helm4")
        ratio = f"{speedup:.0f}x" if isinstance(speedup, float) else "-"
        lines.append(
            f"{name:<30} {ours.median:>9.1f}s {helm_cell(name, 4):>16} {helm_cell(name, 3):>16} {ratio:>10}  "
            f"{ours.extra.get('verdict', '')}"
        )
    return lines
