"""Start-up (issue 20): ``deployctl --help`` and ``deployctl ci steps`` vs the Python floor and ``helm --help``.

Every subject runs once per round, rounds repeated, so a change in the machine's load hits all of them alike
(a shared 2-core machine's load swings within seconds). Targets: at most 3x ``python3 -c pass`` and at most
1.0x ``helm --help``. ``import click`` is measured alongside: what any Click CLI pays before its first line.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time
from pathlib import Path

from bench.measure import Sample
from deployctl.cli.main import installed_tools_dir
from deployctl.runner import ProcessRunner

REPO = Path(__file__).resolve().parent.parent
TARGET_FLOOR = 3.0
TARGET_HELM = 1.0
FLOOR, HELM = "python3 -c pass (floor)", "helm --help"
TARGETED = ("deployctl --help", "deployctl ci steps")


def subjects() -> list[tuple[str, list[str]]]:
    deployctl = str(Path(sys.executable).with_name("deployctl"))
    found: list[tuple[str, list[str]]] = [
        (FLOOR, [sys.executable, "-c", "pass"]),
        ("python3 -c 'import click'", [sys.executable, "-c", "import click"]),
        ("deployctl --help", [deployctl, "--help"]),
        ("deployctl --version", [deployctl, "--version"]),
        ("deployctl ci steps", [deployctl, "ci", "steps", "--event", "push", "--ref", "refs/heads/main"]),
    ]
    helm = shutil.which("helm") or shutil.which("helm", path=str(installed_tools_dir()))
    if helm:
        found.insert(1, (HELM, [helm, "--help"]))
    return found


def interleaved(runs: list[tuple[str, list[str]]], repeat: int) -> dict[str, list[float]]:
    """Wall times per subject: one warm-up round, then ``repeat`` rounds of every subject in turn."""
    runner = ProcessRunner()
    env = {**os.environ, "DEPLOYCTL_CONFIG": str(REPO / "pyproject.toml")}
    env.pop("DEPLOYCTL_SANDBOX", None)
    times: dict[str, list[float]] = {name: [] for name, _ in runs}
    for round_ in range(repeat + 1):
        for name, argv in runs:
            started = time.perf_counter()
            runner.run(argv, cwd=REPO, env=env)
            if round_:
                times[name].append(time.perf_counter() - started)
    return times


def run(repeat: int) -> list[Sample]:
    times = interleaved(subjects(), repeat)
    floor = statistics.median(times[FLOOR])
    helm = statistics.median(times[HELM]) if HELM in times else None
    load = Path("/proc/loadavg").read_text().split()[0] if Path("/proc/loadavg").is_file() else "?"
    samples = []
    for name, measured in times.items():
        median = statistics.median(measured)
        extra: dict[str, object] = {"ratio_to_floor": median / floor}
        if helm is not None:
            extra["ratio_to_helm"] = median / helm
        if name in TARGETED:
            extra["target"] = f"<= {TARGET_FLOOR}x floor, <= {TARGET_HELM}x helm --help"
            extra["met"] = median / floor <= TARGET_FLOOR and (helm is None or median / helm <= TARGET_HELM)
        if name == FLOOR:
            extra["loadavg_1m"] = load
        samples.append(Sample("startup", name, tuple(measured), extra))
    return samples
