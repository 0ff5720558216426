"""Timing and memory measurement shared by the benchmarks."""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from deployctl.runner import ProcessRunner


@dataclass(frozen=True)
class Sample:
    """Wall times of repeated runs of one subject."""

    benchmark: str
    subject: str
    times: tuple[float, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """Half the range, as a fraction of the median (a robust noise figure for few runs)."""
        if len(self.times) < 2 or self.median == 0:
            return 0.0
        return (max(self.times) - min(self.times)) / 2 / self.median

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "median": self.median, "spread": self.spread}


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


def children_peak_rss_mib() -> float:
    """Peak resident memory of the largest child process waited for so far (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
