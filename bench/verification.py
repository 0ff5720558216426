"""Verification's overhead on a passing release: ``deployctl deploy dev`` of the repository's chart with an HTTP check
(3 consecutive answers, 1 s apart: 2 s of its own time) and a metric check (2 evaluations 1 s apart: 1 s), through the
lab's API server proxy and its VictoriaMetrics; the chart's ``helm test`` measured apart (a kwok Job: its time is
the Job's, not configured). The overhead is the verification's wall time (``verification.seconds`` in the deploy's
JSON) minus the checks' own configured time; the target: at most 2 s.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from bench import labs
from bench.measure import Sample, say
from deployctl.sandbox import image_push

TARGET_OVERHEAD = 2.0
BACKEND = '{ bucket = "acme-api-tfstate", key = "dev/terraform.tfstate", region = "us-east-1" }'
HTTP = 'http = [{ name = "readyz", path = "/readyz", successes = 3, interval_seconds = 1 }]'
METRIC = """[[tool.deployctl.apps.api.verify.metrics]]
name = "errors"
query = 'max(errors_ratio{namespace="{{namespace}}"}) or vector(0)'
condition = "< 0.01"
count = 2
interval_seconds = 1
"""
CONFIGURED = {"http + metric": 2.0 + 1.0, "helm test": 0.0}


def config(repo: labs.Checkout, namespace: str, kind: str) -> Path:
    checks = "helm_test = { timeout_seconds = 120 }\n" if kind == "helm test" else f"{HTTP}\n{METRIC}"
    path = repo.root / f"bench-verify-{namespace}.toml"
    path.write_text(
        f"""[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{repo.root / "charts" / "api"}"
release = "api"
image = {{ registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", repository = "verify" }}
[tool.deployctl.apps.api.verify]
{checks}
[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
terraform = {{ root = "terraform/env", var_file = "terraform/env/dev.tfvars", backend = {BACKEND} }}
cluster = {{ eks = "api-dev" }}
namespace = "{namespace}"
values = "values-dev.yaml"
metrics = {{ url = "http://replaced-by-the-sandbox.invalid" }}
"""
    )
    return path


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    del smoke  # one kind of release: a smoke run is one repetition
    times: dict[str, list[float]] = {kind: [] for kind in CONFIGURED}
    totals: dict[str, list[float]] = {kind: [] for kind in CONFIGURED}
    with labs.started(["moto", "registry", "cluster", "metrics"]) as lab, labs.checkout(lab) as repo:
        host = lab.registry_hosts[0]
        values = repo.root / "values-dev.yaml"
        values.write_text(_api_only(values.read_text()))
        for n in range(repeat):
            for index, kind in enumerate(CONFIGURED):
                digest = image_push.push_image(host, "verify", f"r{n}k{index}", seed=7000 + 10 * n + index).digest
                namespace = f"v{index}r{n}"
                say(f"verification: deployctl deploy dev ({kind}, {n + 1}/{repeat})")
                result = repo.deployctl(
                    "--config", str(config(repo, namespace, kind)), "deploy", "dev", "--digest", digest,
                    output_json=True,
                )  # fmt: skip
                (app,) = json.loads(result.stdout)["apps"]
                verification: dict[str, Any] = app["verification"]
                assert verification["outcome"] == "passed", verification  # noqa: S101 - a passing release
                times[kind].append(float(verification["seconds"]))
                totals[kind].append(float(app["duration_seconds"]))
                lab.kube("DELETE", f"/api/v1/namespaces/dev-{namespace}")
    found = []
    for kind, configured in CONFIGURED.items():
        overhead = statistics.median(times[kind]) - configured
        extra: dict[str, Any] = {
            "configured_s": configured,
            "overhead_s": overhead,
            "deploy_total_s": statistics.median(totals[kind]),
        }
        if configured:
            extra["target"] = "met" if overhead <= TARGET_OVERHEAD else f"NOT met (<= {TARGET_OVERHEAD:.0f}s)"
        found.append(Sample("verification", f"{kind}: checks' wall time", tuple(times[kind]), extra))
    return found


def _api_only(text: str) -> str:
    """The values file with the api's section only (a section that names no app is an error)."""
    from tests.values_files import sections

    return sections(text, ("api",))
