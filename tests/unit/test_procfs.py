"""A lab service is its PID *and* its start time: `sandbox down` (a lab restored from its state file) must not
signal a process that merely reuses a recorded PID, e.g. after a reboot. Real processes, real /proc."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from deployctl import runner
from deployctl.sandbox.processes import Processes, Service
from deployctl.sandbox.procfs import processes_in_groups, start_time


@pytest.fixture
def stranger() -> Iterator[subprocess.Popen[bytes]]:
    """A process that is not the lab's (its own group, like a lab service)."""
    proc = subprocess.Popen(["sleep", "60"], start_new_session=True)
    yield proc
    runner.terminate(proc, grace=1)


def _restored(directory: Path, pid: int, started: int | None) -> Processes:
    """A lab as another CLI process restores it from its state: no Popen handles, only the recorded service."""
    processes = Processes(directory)
    processes.services["moto"] = Service("moto", pid, [], "", "", "tcp", started=started)
    return processes


def test_start_time_identifies_a_live_process_and_none_when_gone(stranger: subprocess.Popen[bytes]) -> None:
    first = start_time(stranger.pid)
    assert first is not None and first == start_time(stranger.pid)
    runner.terminate(stranger, grace=1)
    assert start_time(stranger.pid) is None


def test_a_reused_pid_is_not_signalled(tmp_path: Path, stranger: subprocess.Popen[bytes]) -> None:
    started = start_time(stranger.pid)
    assert started is not None
    reused = _restored(tmp_path, stranger.pid, started + 1)  # recorded by a process that had this PID before
    assert not reused.services["moto"].is_running()
    reused.stop(check=False)
    assert stranger.poll() is None, "a process that only reuses the PID was killed"
    assert processes_in_groups([stranger.pid]) == [stranger.pid]


def test_the_recorded_process_is_stopped(tmp_path: Path, stranger: subprocess.Popen[bytes]) -> None:
    ours = _restored(tmp_path, stranger.pid, start_time(stranger.pid))
    assert ours.services["moto"].is_running()
    ours.stop()
    assert stranger.wait(timeout=10) is not None
    assert processes_in_groups([stranger.pid]) == []
