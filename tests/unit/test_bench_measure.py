"""The benchmarks' reader of the lab's CPU: every live process of the given process groups, and nothing else."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.measure import process_group_cpu

# Burns 0.3 CPU-seconds of its own (whatever the machine's load), says so, then idles until killed.
BURN = "import time\nwhile time.process_time() < 0.3: pass\nprint('burnt', flush=True)\ntime.sleep(60)\n"


def test_the_cpu_of_a_process_group_is_read_and_other_groups_are_not_counted() -> None:
    burner = subprocess.Popen([sys.executable, "-c", BURN], start_new_session=True, stdout=subprocess.PIPE, text=True)
    try:
        assert burner.stdout is not None and burner.stdout.readline() == "burnt\n"
        own = process_group_cpu([burner.pid])
        assert 0.25 <= own < 2.0, own  # /proc counts whole clock ticks (10 ms)
        assert process_group_cpu([burner.pid + 1_000_000]) == 0.0, "a group with no process spent nothing"
        time.sleep(0.1)
        assert process_group_cpu([burner.pid]) - own < 0.05, "an idle group adds (almost) nothing"
    finally:
        burner.kill()
        burner.wait()
