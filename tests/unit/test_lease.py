"""The lock held as a lease, on the in-memory S3: renewed while held, numbered (fencing) above every hold
before it, and once lost (taken over, removed, or not renewed in time) never trusted again: every check
refuses with exit 5 and the new holder's lock is left alone."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from deployctl.core.errors import ExitCode, LockedError
from deployctl.ledger import lease as lease_module
from deployctl.ledger.lock import EnvironmentLock, LeaseLostError
from deployctl.ledger.lock_record import fence_key, lock_key
from tests.unit.fakes import FakeS3
from tests.unit.test_lock import BUCKET, KEY, held_id, plant, planted

SHORT = timedelta(seconds=0.6)  # renewed every 0.2 s


def stored(s3: FakeS3, key: str = KEY) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(s3.objects[(BUCKET, key)])
    return loaded


def take_over(s3: FakeS3, *, fence: int = 9) -> None:
    """Another run takes the lock over (as after this one stalled past its TTL)."""
    s3.objects[(BUCKET, KEY)] = json.dumps(asdict(planted("successor", fence=fence))).encode()
    s3.modified[(BUCKET, KEY)] = s3.clock()


def test_the_holder_renews_its_lease_so_a_waiter_never_takes_it_over() -> None:
    """Held for 4 TTLs: every renewal rewrites the object (new ETag, LastModified by S3's clock) under the same id
    and number, and a run arriving meanwhile finds it live (exit 5), never stale."""
    s3 = FakeS3()
    with EnvironmentLock("dev", BUCKET, s3).hold("deploy dev", timeout=0, ttl=SHORT) as lease:
        first_etag, first_modified = lease.etag, s3.modified[(BUCKET, KEY)]
        time.sleep(4 * SHORT.total_seconds())
        with pytest.raises(LockedError) as caught:
            EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
        assert not isinstance(caught.value, LeaseLostError)
        assert lease.etag != first_etag and s3.modified[(BUCKET, KEY)] > first_modified
        assert (stored(s3)["id"], stored(s3)["fence"]) == (lease.id, lease.fence) == (lease.id, 1)
        lease.check()  # still this run's
    assert held_id(s3) is None, "released with the ETag of its last renewal"


def test_a_take_over_numbers_the_new_hold_above_the_stale_one() -> None:
    s3 = FakeS3()
    plant(s3, "stale0", stale=True, fence=7)
    lease = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    assert lease.fence == 8 and stored(s3)["fence"] == 8
    assert stored(s3, fence_key("dev"))["fence"] == 8, "the last number issued"


def test_a_lock_released_then_taken_again_continues_the_numbers() -> None:
    """The number orders every hold of the environment: a fresh hold after a release (or a `lock break`) gets
    a higher one, although the lock object was deleted."""
    s3 = FakeS3()
    lock = EnvironmentLock("dev", BUCKET, s3)
    fences = []
    for _ in range(2):
        with lock.hold("deploy dev", timeout=0) as lease:
            fences.append(lease.fence)
    lock.acquire("deploy dev", timeout=0)
    lock.break_lock()
    with lock.hold("deploy dev", timeout=0) as lease:
        fences.append(lease.fence)
    assert fences == [1, 2, 4]


@dataclass
class IssuedMeanwhile(FakeS3):
    """Right after our run reads the last number, another run takes the free lock, numbers it and releases it:
    it issued the very number ours is about to take."""

    raced: list[int] = field(default_factory=list)

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        got = super().get_object(Bucket=Bucket, Key=Key)
        if Key == fence_key("dev") and not self.raced:
            self.raced.append(0)
            other = EnvironmentLock("dev", BUCKET, self)
            other._ahead_of = lambda *_: 0  # type: ignore[method-assign] # it arrived first: ours queued behind it
            with other.hold("the other run", timeout=0) as lease:
                self.raced[0] = lease.fence
        return got


def test_a_number_issued_meanwhile_renumbers_the_new_hold_above_it() -> None:
    s3 = IssuedMeanwhile()
    s3.objects[(BUCKET, fence_key("dev"))] = json.dumps({"fence": 4, "lock": "old"}).encode()
    lease = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    assert s3.raced == [5]
    assert lease.fence == 6 and stored(s3)["fence"] == 6 and stored(s3, fence_key("dev"))["fence"] == 6


def test_a_hold_whose_lock_was_taken_over_is_fenced_with_exit_5_for_good() -> None:
    s3 = FakeS3()
    with (  # noqa: PT012 (the block is the hold)
        pytest.raises(LeaseLostError) as caught,
        EnvironmentLock("dev", BUCKET, s3).hold("deploy dev", timeout=0) as lease,
    ):
        lease.check()
        take_over(s3)
        with pytest.raises(LeaseLostError):
            lease.check()
        s3.objects[(BUCKET, KEY)] = json.dumps(asdict(lease.info)).encode()  # even were it back
        lease.check()
    error = caught.value
    assert error.exit_code == ExitCode.LOCKED
    assert error.message.startswith("lost the lock of dev to ci@another-host (pid 1, CI run 42) running `deploy dev`")
    assert ", which took it at " in error.message and "(fence 9); this run wrote nothing after that" in error.message
    assert held_id(s3) == lease.id, "its release removes nothing: the lock is not its own"


def test_a_renewal_that_loses_its_compare_and_swap_loses_the_lease() -> None:
    s3 = FakeS3()
    lease = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    assert lease.renew()
    take_over(s3)
    assert not lease.renew()
    assert lease.lost is not None and "to ci@another-host" in lease.lost.message
    with pytest.raises(LeaseLostError):
        lease.check()
    assert held_id(s3) == "successor"


def test_a_lock_removed_while_held_is_lost() -> None:
    s3 = FakeS3()
    lease = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    s3.objects.pop((BUCKET, KEY))
    with pytest.raises(LeaseLostError, match="it was removed"):
        lease.check()


@dataclass
class Unanswering(FakeS3):
    """S3 stops answering writes of the lock (renewals time out); reads still work."""

    down: bool = False

    def put_object(self, **kwargs: Any) -> dict[str, Any]:
        if self.down and kwargs["Key"] == KEY:
            raise ReadTimeoutError(endpoint_url=f"https://s3/{BUCKET}/{KEY}")
        return super().put_object(**kwargs)


def test_a_lease_not_renewed_within_its_ttl_is_lost_even_if_nobody_took_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The holder's own deadline (TTL after it sent its last successful renewal, on its own clock): past it a
    waiter may take the lock at any moment, so the holder stops trusting it whatever S3 still shows."""
    s3 = Unanswering()
    now = [1000.0]
    monkeypatch.setattr(lease_module, "clock", lambda: now[0])
    monkeypatch.setattr("deployctl.ledger.lock.clock", lambda: now[0])
    lease = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)  # TTL 120 s, sent at 1000
    s3.down = True
    now[0] += 60
    assert not lease.renew() and lease.lost is None, "tried again sooner, still valid"
    lease.check()
    now[0] += 50  # 110 s after the last renewal was sent: past 90% of the TTL
    with pytest.raises(LeaseLostError, match="could not be renewed within its 120s time to live"):
        lease.check()
    assert held_id(s3) == lease.id


@dataclass
class UnreadableLock(FakeS3):
    """S3 stops answering reads of the lock."""

    down: bool = False

    def get_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        if self.down and Key == KEY:
            raise ReadTimeoutError(endpoint_url=f"https://s3/{BUCKET}/{KEY}")
        return super().get_object(Bucket=Bucket, Key=Key)


def test_a_check_s3_does_not_answer_relies_on_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Within its deadline no other run can hold the lock: the write goes on (and meets the same S3); past it,
    the lease is lost whatever S3 answers."""
    s3 = UnreadableLock()
    now = [1000.0]
    monkeypatch.setattr(lease_module, "clock", lambda: now[0])
    monkeypatch.setattr("deployctl.ledger.lock.clock", lambda: now[0])
    lease = EnvironmentLock("dev", BUCKET, s3).acquire("deploy dev", timeout=0)
    s3.down = True
    lease.check()
    now[0] += 109
    with pytest.raises(LeaseLostError, match="could not be renewed"):
        lease.check()


def test_a_loss_found_by_the_renewals_stops_the_holding_main_thread_at_once() -> None:
    """The block is busy (a rollout watch, a soak): the renewal that finds the lock taken over interrupts it as
    Ctrl-C would, and the hold ends with the loss (exit 5), not with an interruption (130)."""
    s3 = FakeS3()
    started = time.monotonic()
    with (  # noqa: PT012 (the block is the hold)
        pytest.raises(LeaseLostError) as caught,
        EnvironmentLock("dev", BUCKET, s3).hold("deploy dev", timeout=0, ttl=SHORT),
    ):
        take_over(s3)
        time.sleep(10)
    assert time.monotonic() - started < 3
    assert caught.value.exit_code == ExitCode.LOCKED and isinstance(caught.value.__cause__, KeyboardInterrupt)
    assert held_id(s3) == "successor"


def test_the_lock_object_says_its_number_ttl_and_host_identity() -> None:
    s3 = FakeS3()
    with EnvironmentLock("dev", BUCKET, s3).hold("deploy dev", timeout=0) as lease:
        body = stored(s3)
    assert body["fence"] == lease.fence == 1 and body["ttl_seconds"] == 120
    assert body["host_id"] is not None and body["host_id"].startswith(body["host"] + "/")
    assert lock_key("dev") == KEY
