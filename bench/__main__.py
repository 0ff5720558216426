"""``python -m bench [--smoke] [--only NAME]``: run the benchmarks, print a table, write bench/results.json."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from bench.labs import BASELINE_ENV
from bench.measure import Sample

# name -> module with run(repeat) -> list[Sample]; modules that need services start the lab themselves.
BENCHMARKS = (
    "startup",
    "promote_size",
    "copy",
    "rollout",
    "plan",
    "board",
    "ledger",
    "helm_lookup",
    "promote_apps",
    "waves",
    "verification",
)
RESULTS = Path(__file__).resolve().parent / "results.json"


def machine() -> dict[str, object]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(samples: list[Sample]) -> list[str]:
    lines = [f"{'benchmark':<12} {'subject':<44} {'median':>9} {'spread':>7}  notes"]
    for s in samples:
        notes = ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in s.extra.items())
        if not s.times:
            lines.append(f"{s.benchmark:<12} {s.subject:<44} {'skipped':>9} {'':>7}  {notes}")
        else:
            lines.append(f"{s.benchmark:<12} {s.subject:<44} {_duration(s.median):>9} {s.spread:>6.0%}  {notes}")
    return lines


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:.1f}ms" if seconds < 10 else f"{seconds:.1f}s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--smoke", action="store_true", help="one quick repetition, tiny sizes (used by the tests)")
    parser.add_argument("--only", action="append", choices=BENCHMARKS)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure deployctl as it is at git REF (e.g. main; several: main,HEAD), interleaved with this "
        "tree (rollout, promote_apps)",
    )
    args = parser.parse_args(argv)
    if args.baseline:
        os.environ[BASELINE_ENV] = args.baseline
    repeat = 1 if args.smoke else args.repeat
    samples: list[Sample] = []
    extra_tables: list[str] = []
    for name in args.only or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        print(f"running {name} ...", file=sys.stderr)
        found = (
            module.run(repeat, smoke=args.smoke) if "smoke" in module.run.__code__.co_varnames else module.run(repeat)
        )
        samples.extend(found)
        if hasattr(module, "tables"):  # a benchmark's own table (e.g. rollout: time to verdict per failure class)
            extra_tables.extend(module.tables(found))
    document = {
        "schema": "deployctl/bench/v1",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "repeat": repeat,
        "baseline": args.baseline,
        "results": [s.to_dict() for s in samples],
    }
    args.out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    print("\n".join(table(samples) + extra_tables))
    print(f"\nwritten: {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
