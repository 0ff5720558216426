"""Timing and memory measurement shared by the benchmarks."""

from __future__ import annotations

import math
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
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


def process_group_cpu(groups: Iterable[int]) -> float:
    """User + system CPU seconds used so far by every live process in the process ``groups`` (the lab's services,
    each the leader of its own group): what the cluster, the registry and moto spend beside the measured command
    on the same cores. A process that already exited is not counted (the lab's services stay up)."""
    wanted, tick, total = set(groups), os.sysconf("SC_CLK_TCK"), 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it exited while we read
            continue
        if int(fields[2]) in wanted:  # after ")": pgrp is field 5 (index 2), utime 14 and stime 15 (11, 12)
            total += int(fields[11]) + int(fields[12])
    return total / tick


@dataclass(frozen=True)
class SplitRun:
    """One child process: its wall time, its own CPU (every thread of it) and its children's (helm, terraform...)."""

    exit_code: int
    seconds: float
    own_cpu: float
    children_cpu: float
    stdout: str
    stderr: str


def run_split(argv: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> SplitRun:
    """Run ``argv``, and read its CPU from ``/proc/PID/stat`` once it has exited but before it is reaped (``waitid``
    with ``WNOWAIT``): ``utime + stime`` is its own, ``cutime + cstime`` that of the children it waited for. Its
    whole life counts, the interpreter's exit included (an in-process ``atexit`` hook would miss that)."""
    tick = os.sysconf("SC_CLK_TCK")
    with tempfile.TemporaryDirectory(prefix="deployctl-bench-split-") as tmp:
        out, err = Path(tmp) / "out", Path(tmp) / "err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, stdout.fileno(), 1),
                (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2),
            ]
            started = time.perf_counter()
            here = Path.cwd()
            os.chdir(cwd)  # posix_spawn has no cwd (the benchmarks run one child at a time)
            try:
                pid = os.posix_spawnp(argv[0], list(argv), dict(env), file_actions=actions)
            finally:
                os.chdir(here)
            os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
            seconds = time.perf_counter() - started
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            _, status = os.waitpid(pid, 0)
        # after ")": state is field 3, so utime (14), stime (15), cutime (16), cstime (17) are at 11..14
        own = (int(fields[11]) + int(fields[12])) / tick
        children = (int(fields[13]) + int(fields[14])) / tick
        return SplitRun(
            os.waitstatus_to_exitcode(status), seconds, own, children, out.read_text(), err.read_text(errors="replace")
        )
