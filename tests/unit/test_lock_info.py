"""The lock's rules that need no S3: who counts as a dead holder, and expiry."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from deployctl.lock import LockInfo


def info(**changes: object) -> LockInfo:
    now = datetime.now(UTC)
    base = LockInfo(
        id="abc",
        env="dev",
        owner="me",
        host=socket.gethostname(),
        pid=os.getpid(),
        command="deploy dev",
        ci_run_id=None,
        started_at=now.isoformat(),
        expires_at=(now + timedelta(hours=1)).isoformat(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_live_holder_on_this_host_is_not_orphaned() -> None:
    assert not info().orphaned


def test_dead_holder_on_this_host_is_orphaned() -> None:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    assert info(pid=int(child.stdout)).orphaned


def test_holder_on_another_host_is_never_judged_by_pid() -> None:
    assert not info(host="some-other-host", pid=999_999_999).orphaned


def test_expiry() -> None:
    past = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    assert info(expires_at=past).expired
    assert not info().expired


def test_describe_names_holder_and_ci_run() -> None:
    text = info(ci_run_id="4242").describe()
    assert "me@" in text
    assert "CI run 4242" in text
    assert "`deploy dev`" in text
