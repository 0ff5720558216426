"""The lock's rules that need no S3: who counts as a dead holder (the host identity, PID namespace included),
and expiry by S3's clock only."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deployctl.ledger import lock_record
from deployctl.ledger.lock import LockInfo, Observed
from deployctl.ledger.lock_record import host_identity


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
        expires_at=(now + timedelta(minutes=2)).isoformat(),
        ttl_seconds=120,
        host_id=host_identity(),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(child.stdout)


def test_live_holder_on_this_host_is_not_orphaned() -> None:
    assert not info().orphaned


def test_dead_holder_on_this_host_is_orphaned() -> None:
    assert info(pid=dead_pid()).orphaned


def test_holder_on_another_host_is_never_judged_by_pid() -> None:
    assert not info(host="some-other-host", host_id="some-other-host/b/pid:[1]", pid=999_999_999).orphaned


def test_the_host_identity_names_the_hostname_the_boot_and_the_pid_namespace() -> None:
    found = host_identity()
    assert found is not None, "Linux: /proc says it"
    boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    assert found == f"{socket.gethostname()}/{boot}/{PID_NS.readlink()}"


def test_same_hostname_in_another_pid_namespace_is_never_judged_by_pid() -> None:
    """Two CI containers share a hostname, not their PIDs: a holder whose identity differs only in its PID
    namespace is judged by expiry alone, even when its pid does not exist here."""
    mine = host_identity()
    assert mine is not None
    other = mine.rsplit("/", 1)[0] + "/pid:[4026599999]"
    assert not info(pid=dead_pid(), host_id=other).orphaned


def test_a_lock_without_a_host_identity_is_judged_by_expiry_only() -> None:
    """Written where /proc could not say (or by a deployctl before host identities): never judged by its pid."""
    assert not info(pid=dead_pid(), host_id=None).orphaned


def test_where_proc_cannot_say_no_holder_is_judged_by_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    holder = info(pid=dead_pid())
    monkeypatch.setattr(lock_record, "Path", lambda *_: _Unreadable())
    assert host_identity() is None
    assert not holder.orphaned


class _Unreadable:
    def read_text(self, **_: object) -> str:
        raise PermissionError("no /proc here")

    def stat(self) -> os.stat_result:
        raise PermissionError("no /proc here")


UNSHARE = shutil.which("unshare")
PID_NS = Path("/proc/self/ns/pid")
WAITER = """
import json, sys
from deployctl.ledger.lock import LockInfo
held = LockInfo(**json.loads(sys.argv[1]))
print(json.dumps({"orphaned": held.orphaned, "pid_ns": __import__("os").readlink("/proc/self/ns/pid")}))
"""


def test_a_waiter_in_another_pid_namespace_never_takes_this_live_holder_for_dead() -> None:
    """For real: a waiter in its own PID namespace (as in another container on this host, same hostname) does
    not see this process's pid; judged by hostname and pid alone, this live holder would look dead to it."""
    if UNSHARE is None or subprocess.run([UNSHARE, "-Urpf", "true"], capture_output=True, check=False).returncode != 0:
        pytest.skip("unshare cannot make a user and PID namespace here")
    holder = json.dumps(asdict(info()))  # this live process, this host
    argv = [UNSHARE, "-Urpf", sys.executable, "-c", WAITER, holder]
    seen = json.loads(subprocess.run(argv, capture_output=True, text=True, check=True).stdout)
    assert seen["pid_ns"] != str(PID_NS.readlink()), "the waiter ran in a PID namespace of its own"
    assert seen["orphaned"] is False


def observed(renewed: datetime, now: datetime | None, **changes: object) -> Observed:
    return Observed(info(**changes), '"etag"', renewed, now)


def test_expiry_is_judged_on_s3s_clock_only() -> None:
    """The lock's time to live after its last renewal (LastModified), against S3's Date: whatever the reader's
    or the holder's clock says (expires_at)."""
    s3_now = datetime(2030, 1, 1, tzinfo=UTC)  # far from the runner's clock on purpose
    long_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert not observed(s3_now - timedelta(seconds=60), s3_now, expires_at=long_ago).expired
    assert observed(s3_now - timedelta(seconds=122), s3_now).expired
    assert observed(s3_now - timedelta(seconds=122), s3_now).stale


def test_expiry_leaves_a_second_for_s3s_whole_second_headers() -> None:
    s3_now = datetime(2030, 1, 1, tzinfo=UTC)
    assert not observed(s3_now - timedelta(seconds=121), s3_now).expired, "TTL + 1 s is not yet past"
    assert observed(s3_now - timedelta(seconds=121, milliseconds=1), s3_now).expired


def test_an_answer_without_a_date_never_expires_a_lock() -> None:
    assert not observed(datetime(2000, 1, 1, tzinfo=UTC), None).expired


def test_a_lock_from_before_leases_lives_from_its_start_to_its_expiry() -> None:
    """Written once with its whole lifetime (1 h, plus soaks): that is its time to live."""
    started = datetime(2030, 1, 1, tzinfo=UTC)
    old = observed(started, started + timedelta(minutes=59), ttl_seconds=None, started_at=started.isoformat())
    old = replace(old, info=replace(old.info, expires_at=(started + timedelta(hours=1)).isoformat()))
    assert old.info.ttl == timedelta(hours=1) and not old.expired
    assert replace(old, now=started + timedelta(hours=1, seconds=2)).expired


def test_describe_names_holder_and_ci_run() -> None:
    text = info(ci_run_id="4242").describe()
    assert "me@" in text
    assert "CI run 4242" in text
    assert "`deploy dev`" in text
