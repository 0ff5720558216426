"""Timing and memory measurement shared by the benchmarks."""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from deployctl.runner import ProcessRunner


@dataclass(frozen=True)
class Sample:
    """Wall times of repeated runs of one subject."""

    benchmark: str
    subject: str
    times: tuple[float, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def skipped(cls, benchmark: str, subject: str, reason: str) -> Sample:
        """A subject that was not measured this run (the table and the JSON say why)."""
        return cls(benchmark, subject, (), {"skipped": reason})

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else math.nan

    @property
    def spread(self) -> float:
        """Half the range, as a fraction of the median (a robust noise figure for few runs)."""
        if len(self.times) < 2 or not self.median:
            return 0.0
        return (max(self.times) - min(self.times)) / 2 / self.median

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "median": self.median if self.times else None, "spread": self.spread}


def say(line: str) -> None:
    """Progress for the person running the benchmarks (stderr; stdout carries the table)."""
    print(f"  {line}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], object]) -> float:
    """Wall time of one call."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def time_call(fn: Callable[[], object], repeat: int, warmup: int = 1) -> tuple[float, ...]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return tuple(times)


def time_command(
    argv: Sequence[str], repeat: int, *, env: dict[str, str] | None = None, ok_codes: Sequence[int] = (0,)
) -> tuple[float, ...]:
    runner = ProcessRunner()
    return time_call(lambda: runner.run(list(argv), env=env, ok_codes=ok_codes), repeat)


@dataclass(frozen=True)
class ChildRun:
    exit_code: int
    seconds: float
    peak_rss_mib: float
    output: str


GNU_TIME = Path("/usr/bin/time")


def run_measured(argv: Sequence[str], *, env: Mapping[str, str] | None = None) -> ChildRun:
    """Run ``argv``; its wall time and the peak resident memory of that one process.

    Measured by GNU time (``-f %M``), which forks from a 2 MB process. Reading ``ru_maxrss`` of a child
    spawned from here would not do: Linux carries the spawning process's high-water mark across exec,
    so every child would report at least this (large) process's RSS; ``RUSAGE_CHILDREN`` has the same
    problem and also mixes in every other child (terraform, crane...).
    """
    if not GNU_TIME.is_file():
        raise RuntimeError(f"{GNU_TIME} (GNU time) is needed to measure peak memory: apt-get install time")
    with tempfile.TemporaryDirectory(prefix="deployctl-bench-rss-") as tmp:
        report = Path(tmp) / "maxrss"
        out = Path(tmp) / "output"
        with out.open("wb") as sink:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, sink.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, sink.fileno(), 2),
            ]
            command = [str(GNU_TIME), "-f", "%M", "-o", str(report), *argv]
            started = time.perf_counter()
            pid = os.posix_spawn(
                command[0], command, dict(env if env is not None else os.environ), file_actions=actions
            )
            _, status = os.waitpid(pid, 0)
            seconds = time.perf_counter() - started
        output = out.read_text(errors="replace")
        lines = report.read_text().split() if report.is_file() else []
    kib = next((int(word) for word in reversed(lines) if word.isdigit()), 0)
    return ChildRun(os.waitstatus_to_exitcode(status), seconds, kib / 1024, output)


def scratch_dir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"deployctl-bench-{prefix}-"))


def children_peak_rss_mib() -> float:
    """Peak resident memory of the largest child process waited for so far (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def loadavg() -> float:
    """The 1-minute load average (recorded with the figures: the machine is shared)."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def cpu_seconds() -> float:
    """User + system CPU seconds of every child process waited for so far (with their own children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
