"""Start-up: ``deployctl --help`` / ``--version`` vs the Python floor and the tools users already run."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from bench.measure import Sample, time_command

TARGET_RATIO = 3.0


def run(repeat: int) -> list[Sample]:
    deployctl = str(Path(sys.executable).with_name("deployctl"))
    subjects: list[tuple[str, list[str]]] = [
        ("python3 -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("deployctl --help", [deployctl, "--help"]),
        ("deployctl --version", [deployctl, "--version"]),
    ]
    for name, argv in (
        ("helm version", ["helm", "version"]),
        ("terraform version", ["terraform", "version"]),
        ("aws --version", ["aws", "--version"]),
    ):
        if shutil.which(argv[0]):
            subjects.append((name, argv))
    samples = [Sample("startup", name, time_command(argv, repeat)) for name, argv in subjects]
    floor = samples[0].median
    return [
        Sample(s.benchmark, s.subject, s.times, {"ratio_to_floor": s.median / floor, "target": f"<= {TARGET_RATIO}x"})
        if s.subject.startswith("deployctl")
        else Sample(s.benchmark, s.subject, s.times, {"ratio_to_floor": s.median / floor})
        for s in samples
    ]
