"""The lab's Prometheus-compatible metrics API: VictoriaMetrics single-node (built from its Go module, like the
control plane), which serves Prometheus' query API (``/api/v1/query``) and takes pushed samples in the Prometheus
text format (``/api/v1/import/prometheus``), so a lab test or the demo writes the numbers a metric check then reads.

Why VictoriaMetrics and not Prometheus: one binary of 26.8 MB, built cold (empty module and build caches) in 50 s on
2 cores, ~25 MB of memory, and samples are pushed (Prometheus only scrapes, or takes remote-write protobuf). It
answers a query it cannot parse with HTTP 400 like Prometheus (its ``errorType`` is "400" where Prometheus says
"bad_data").
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from deployctl.sandbox.processes import Launch

NAME = "metrics"


def launch(binary: Path, data: Path) -> Launch:
    def command(ports: list[int]) -> list[str | Path]:
        return [
            binary,
            f"-storageDataPath={data}",
            f"-httpListenAddr=127.0.0.1:{ports[0]}",
            "-retentionPeriod=1d",
            # samples are queryable as soon as they are pushed (the default hides the last 30 s), no result cache
            "-search.latencyOffset=0s",
            "-search.disableCache",
        ]

    return Launch(NAME, command, lambda ports: f"http://127.0.0.1:{ports[0]}", probe="http", probe_path="/health")


def sample(name: str, labels: Mapping[str, str], value: float, at: float | None = None) -> str:
    """One sample in the Prometheus text format, stamped ``at`` (epoch seconds; default now)."""
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{shown}}} {value} {int((at if at is not None else time.time()) * 1000)}"


def push(url: str, lines: list[str], timeout: float = 10) -> None:
    """Write samples, then make them readable at once (VictoriaMetrics buffers them for a second or so)."""
    body = ("\n".join(lines) + "\n").encode()
    request = urllib.request.Request(f"{url}/api/v1/import/prometheus", data=body, method="POST")  # noqa: S310 - the lab's URL
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the lab's URL
        response.read()
    with urllib.request.urlopen(f"{url}/internal/force_flush", timeout=timeout) as response:  # noqa: S310
        response.read()
