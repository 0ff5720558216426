"""Progress phases say how a step ended: done, failed (the error follows) or interrupted."""

from __future__ import annotations

import io

import pytest

from deployctl.console import Console


def _console() -> tuple[Console, io.StringIO]:
    err = io.StringIO()
    return Console(out=io.StringIO(), err=err), err


def test_a_phase_that_ends_says_done() -> None:
    console, err = _console()
    with console.phase("watching the rollout of deployment api"):
        pass
    lines = err.getvalue().splitlines()
    assert lines[0] == "watching the rollout of deployment api ..."
    assert lines[1].startswith("watching the rollout of deployment api done (")


def test_a_phase_that_raised_says_failed_never_done() -> None:
    console, err = _console()
    with pytest.raises(RuntimeError), console.phase("watching the rollout of deployment api"):
        raise RuntimeError("rollout failed")
    last = err.getvalue().splitlines()[-1]
    assert last.startswith("watching the rollout of deployment api failed ("), last
    assert " done " not in err.getvalue()


def test_a_phase_stopped_by_ctrl_c_says_interrupted() -> None:
    console, err = _console()
    with pytest.raises(KeyboardInterrupt), console.phase("terraform apply"):
        raise KeyboardInterrupt
    assert err.getvalue().splitlines()[-1].startswith("terraform apply interrupted (")
