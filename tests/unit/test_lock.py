"""The environment lock on the in-memory S3: take-over and break are compare-and-swaps on the ETag, release
removes only our own lock and never hides the block's error, and waiters are served in arrival order."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from deployctl.core.errors import DeployctlError, ExitCode, LockedError, UsageError
from deployctl.ledger.lock import TICKET_STALE, EnvironmentLock, LockInfo
from deployctl.ledger.lock_record import fence_key, lock_key, queue_prefix
from tests.unit.fakes import FakeS3

BUCKET = "state"
KEY = lock_key("dev")


def planted(lock_id: str, *, fence: int = 0) -> LockInfo:
    now = datetime.now(UTC)
    return LockInfo(
        id=lock_id,
        env="dev",
        owner="ci",
        host="another-host",
        pid=1,
        command="deploy dev",
        ci_run_id="42",
        started_at=(now - timedelta(hours=2)).isoformat(timespec="seconds"),
        expires_at=(now + timedelta(minutes=2)).isoformat(timespec="seconds"),
        fence=fence,
        ttl_seconds=120,
    )


def plant(s3: FakeS3, lock_id: str, *, stale: bool, fence: int = 0) -> None:
    """Another run's lock, renewed just now or (``stale``) last renewed 3 minutes ago by S3's clock."""
    s3.objects[(BUCKET, KEY)] = json.dumps(asdict(planted(lock_id, fence=fence))).encode()
    s3.modified[(BUCKET, KEY)] = s3.clock() - timedelta(minutes=3 if stale else 0)


def held_id(s3: FakeS3) -> str | None:
    body = s3.objects.get((BUCKET, KEY))
    return None if body is None else str(json.loads(body)["id"])


def tickets(s3: FakeS3) -> list[str]:
    return [k for _, k in s3.objects if k.startswith(queue_prefix("dev"))]


@dataclass
class RacingS3(FakeS3):
    """``then`` runs once, right after the lock object is read: another run acting between our read and
    our conditional write (the window where the old take-over went wrong)."""

    then: Callable[[FakeS3], object] | None = None

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        got = super().get_object(Bucket=Bucket, Key=Key)
        if Key == KEY and self.then is not None:
            then, self.then = self.then, None
            then(self)
        return got


@dataclass
class UnreachableOnDelete(FakeS3):
    """Deleting the lock times out, as a hung S3 endpoint does."""

    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> None:  # noqa: N803
        if Key == KEY:
            raise ReadTimeoutError(endpoint_url=f"https://s3/{Bucket}/{Key}")
        super().delete_object(Bucket=Bucket, Key=Key, IfMatch=IfMatch)


@pytest.fixture
def lock_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """The lock's warnings, caught on its own logger (the CLI's setup stops "deployctl" propagating)."""
    logger = logging.getLogger("deployctl.ledger.lock")
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, "deployctl.ledger.lock"):
            yield caplog
    finally:
        logger.removeHandler(caplog.handler)


def test_a_free_lock_is_held_for_the_block_and_removed_after() -> None:
    s3 = FakeS3()
    with EnvironmentLock("dev", BUCKET, s3).hold("deploy dev", timeout=0) as lease:
        assert held_id(s3) == lease.id
        assert lease.info.command == "deploy dev" and lease.info.host == socket.gethostname()
    assert list(s3.objects) == [(BUCKET, fence_key("dev"))], "no lock and no queue ticket left: the last number"


def test_a_live_lock_refuses_with_exit_5_and_is_left_alone() -> None:
    s3 = FakeS3()
    plant(s3, "live0", stale=False)
    waited: list[LockInfo] = []
    with pytest.raises(LockedError) as caught:
        EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0, on_wait=waited.append)
    assert caught.value.exit_code == ExitCode.LOCKED
    assert caught.value.hint is not None and "lock break dev --id live0" in caught.value.hint
    assert [w.id for w in waited] == ["live0"]
    assert held_id(s3) == "live0" and tickets(s3) == []


def test_a_stale_lock_is_taken_over_by_compare_and_swap_and_reported() -> None:
    s3 = FakeS3()
    plant(s3, "stale0", stale=True)
    taken: list[LockInfo] = []
    info = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0, on_takeover=taken.append)
    assert held_id(s3) == info.id != "stale0"
    assert [t.id for t in taken] == ["stale0"]


def test_losing_the_take_over_race_waits_instead_of_removing_the_winners_lock() -> None:
    """Another run takes the stale lock over between our read and our write: ours must fail (412), leave
    the winner's lock in place, report no take-over, and end as "locked" (exit 5), never a usage error."""
    s3 = RacingS3()
    plant(s3, "stale0", stale=True)
    s3.then = lambda s: plant(s, "winner", stale=False)
    taken: list[LockInfo] = []
    with pytest.raises(LockedError) as caught:
        EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0, on_takeover=taken.append)
    assert caught.value.exit_code == ExitCode.LOCKED and "winner" in str(caught.value.details["lock"])
    assert held_id(s3) == "winner" and taken == []


def test_a_stale_lock_removed_before_our_take_over_is_then_taken_fresh() -> None:
    s3 = RacingS3()
    plant(s3, "stale0", stale=True)
    s3.then = lambda s: s.objects.pop((BUCKET, KEY))
    taken: list[LockInfo] = []
    info = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0, on_takeover=taken.append)
    assert held_id(s3) == info.id and taken == [], "taken as a free lock, not as a take-over"


def test_break_removes_only_the_lock_with_the_expected_id() -> None:
    s3 = FakeS3()
    lock = EnvironmentLock("dev", BUCKET, s3)
    plant(s3, "live0", stale=False)
    with pytest.raises(UsageError, match="has id live0, not other"):
        lock.break_lock("other")
    assert held_id(s3) == "live0"
    removed = lock.break_lock("live0")
    assert removed is not None and removed.id == "live0" and held_id(s3) is None
    assert lock.break_lock("live0") is None, "a lock already gone is 'not locked'"


def test_break_with_an_id_spares_a_lock_that_replaced_it_meanwhile() -> None:
    s3 = RacingS3()
    plant(s3, "stale0", stale=True)
    s3.then = lambda s: plant(s, "newer", stale=False)
    with pytest.raises(UsageError, match="has id newer, not stale0"):
        EnvironmentLock("dev", BUCKET, s3).break_lock("stale0")
    assert held_id(s3) == "newer"


def test_break_of_a_lock_released_meanwhile_is_not_locked() -> None:
    s3 = RacingS3()
    plant(s3, "live0", stale=False)
    s3.then = lambda s: s.objects.pop((BUCKET, KEY))
    assert EnvironmentLock("dev", BUCKET, s3).break_lock("live0") is None


def test_release_spares_the_lock_of_a_run_that_took_ours_over(lock_log: pytest.LogCaptureFixture) -> None:
    s3 = FakeS3()
    lock = EnvironmentLock("dev", BUCKET, s3)
    with lock.hold("deploy dev", timeout=0):
        plant(s3, "successor", stale=False)  # ours expired and another run took it over
    assert held_id(s3) == "successor"
    assert "taken over by ci@another-host" in lock_log.text


def test_release_of_a_lock_broken_by_hand_is_a_warning(lock_log: pytest.LogCaptureFixture) -> None:
    s3 = FakeS3()
    lock = EnvironmentLock("dev", BUCKET, s3)
    with lock.hold("deploy dev", timeout=0):
        s3.objects.pop((BUCKET, KEY))
    assert "was removed (broken by hand?)" in lock_log.text


def test_a_release_failure_never_hides_the_error_of_the_block(lock_log: pytest.LogCaptureFixture) -> None:
    """The ledger write failed, then the release failed too: the user sees the ledger failure, and the
    release failure as its own warning with the command that frees the lock."""
    s3 = UnreachableOnDelete()
    lock = EnvironmentLock("dev", BUCKET, s3)
    failing = pytest.raises(RuntimeError, match="ledger write")
    with failing, lock.hold("deploy dev", timeout=0) as info:
        raise RuntimeError("ledger write failed")
    assert f"could not release the lock of 'dev' (id {info.id})" in lock_log.text
    assert held_id(s3) == info.id


def test_a_release_failure_after_success_is_an_error_naming_the_lock_break() -> None:
    s3 = UnreachableOnDelete()
    lock = EnvironmentLock("dev", BUCKET, s3)
    with pytest.raises(DeployctlError) as caught, lock.hold("deploy dev", timeout=0) as info:
        pass
    assert caught.value.exit_code == ExitCode.FAILED
    assert caught.value.message.startswith(f"could not release the lock of 'dev' (id {info.id})")
    assert caught.value.hint is not None and f"deployctl lock break dev --id {info.id}" in caught.value.hint


def test_a_waiter_that_arrived_earlier_goes_first_even_when_the_lock_is_free() -> None:
    s3 = FakeS3()
    earlier = f"{queue_prefix('dev')}{0:020d}-earlier.json"
    s3.objects[(BUCKET, earlier)] = b"{}"  # a live waiter (its ticket is as fresh as ours)
    with pytest.raises(LockedError, match="1 run\\(s\\) queued before this one"):
        EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    assert held_id(s3) is None and tickets(s3) == [earlier], "lock not taken; our ticket removed"


def test_the_ticket_of_a_dead_waiter_is_skipped_and_removed() -> None:
    now = datetime.now(UTC)
    s3 = FakeS3(clock=lambda: now)
    dead = f"{queue_prefix('dev')}{0:020d}-dead.json"
    s3.objects[(BUCKET, dead)] = b"{}"
    s3.modified[(BUCKET, dead)] = now - TICKET_STALE - timedelta(seconds=1)  # no heartbeat since
    info = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    assert held_id(s3) == info.id and tickets(s3) == []


def test_a_ticket_just_within_the_heartbeat_bound_still_holds_its_place() -> None:
    now = datetime.now(UTC)
    s3 = FakeS3(clock=lambda: now)
    slow = f"{queue_prefix('dev')}{0:020d}-slow.json"
    s3.objects[(BUCKET, slow)] = b"{}"
    s3.modified[(BUCKET, slow)] = now - TICKET_STALE
    with pytest.raises(LockedError):
        EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    assert tickets(s3) == [slow]
