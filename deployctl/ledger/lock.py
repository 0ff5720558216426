"""The environment lock: one per environment, around everything that mutates it.

Stored beside the terraform state, in the backend bucket, as ``deployctl/locks/<env>.json``. It records
who holds it (owner, host, pid, command, CI run id, started), its time to live and its fencing number.
Every change to it is a compare-and-swap on S3 conditional writes, so under any race at most one run holds it:

* taking a free lock: ``PutObject`` with ``If-None-Match: *`` (fails with 412 when it exists);
* taking over a stale lock (expired by S3's clock, or its holder's process is gone from this very host and
  PID namespace: ``lock_record``): ``PutObject`` of our lock with ``If-Match: <ETag of the stale lock we
  read>``. When another run replaced or removed it first, S3 answers 412 (or 404/409) and we go back to
  waiting; the take-over is reported;
* renewing it while held (``lease``): ``PutObject`` with ``If-Match: <ETag we last wrote>``;
* releasing, and ``deployctl lock break --id``: ``DeleteObject`` with ``If-Match: <ETag>``, so only that
  very lock is removed (ours: the ETag our last write returned). A lock already gone is "not locked".

S3 supports both conditions on general purpose buckets (conditional writes and conditional deletes; a
delete with an ETag also needs ``s3:GetObject``); the moto of the lab implements both.

Every hold gets a fencing number higher than every hold before it (``lock_fence``); a lost hold writes
nothing more (``lease``).

Waiters are served in arrival order (``lock_queue``). A failure to release never replaces the error of the
operation: it is a warning beside that error, or, after an operation that succeeded, the command's error
(exit 1) naming the ``lock break`` to run.
"""

from __future__ import annotations

import getpass
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from deployctl.core.errors import DeployctlError, LockedError
from deployctl.ledger.lease import Lease, LeaseLostError, clock
from deployctl.ledger.lock_fence import FenceCounter
from deployctl.ledger.lock_object import LockObject
from deployctl.ledger.lock_queue import TICKET_STALE, WaitQueue
from deployctl.ledger.lock_record import (
    DEFAULT_TTL,
    LockInfo,
    Observed,
    ci_run_id,
    fence_key,
    host_identity,
    lock_key,
    locked_error,
    queue_prefix,
    release_failed,
)

__all__ = [
    "DEFAULT_TTL",
    "TICKET_STALE",
    "EnvironmentLock",
    "Lease",
    "LeaseLostError",
    "LockInfo",
    "Observed",
    "ci_run_id",
    "fence_key",
    "lock_key",
    "queue_prefix",
]

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0


class EnvironmentLock(LockObject):
    """Acquire, inspect and break the lock of one environment."""

    def __init__(self, env_name: str, bucket: str, s3: Any) -> None:
        super().__init__(env_name, bucket, s3)
        self._queue = WaitQueue(env_name, bucket, s3, queue_prefix(env_name), self.where)
        self._fences = FenceCounter(env_name, bucket, s3, fence_key(env_name))

    def _numbered(self, lease: Lease, counter: str | None) -> bool:
        """Lock just taken: make its number the last issued (``counter``: the ETag of the number read before
        taking it). Another run issued one meanwhile when it took and released the lock between our reading
        the number and taking the lock (ours is renumbered above it), or when it took ours over already
        (False: lost)."""
        for _ in range(3):
            if self._fences.issue(lease.fence, lease.id, counter):
                return True
            last, counter = self._fences.last()
            if last >= lease.fence and not lease.renumber(last + 1):
                return False
        raise LockedError(
            f"the fencing number of {self.env_name!r} changed three times as this run took the lock",
            f"other runs are taking it: run `deployctl lock status {self.env_name}`",
        )

    # ---------------------------------------------------------------- acquire and release

    @contextmanager
    def hold(
        self,
        command: str,
        *,
        timeout: float,
        ttl: timedelta = DEFAULT_TTL,
        on_wait: Callable[[LockInfo], None] | None = None,
        on_takeover: Callable[[LockInfo], None] | None = None,
    ) -> Iterator[Lease]:
        """Hold the lock for the duration of the block, renewed every TTL/3; wait up to ``timeout`` seconds for it.

        A lease lost while held (``lease``) ends the block with LeaseLostError (exit 5), whatever else it
        raised, and the lock is left to its new holder. When the block fails otherwise, a failure to release is
        logged as a warning and the block's error goes on; when the block succeeded, it is the error (exit 1),
        with the ``lock break`` to run."""
        lease = self.acquire(command, timeout=timeout, ttl=ttl, on_wait=on_wait, on_takeover=on_takeover)
        lease.start()
        finished = False
        try:
            try:
                yield lease
                finished = True
            finally:
                lease.stop()  # may raise the KeyboardInterrupt of a loss found just before
        except BaseException as exc:
            lost = lease.lost
            if lost is None:
                self._release_quietly(lease)
                raise
            if not finished:
                if exc is lost:
                    raise
                raise lost from exc
        if lease.lost is not None:  # after the block's last write: every write it made was checked
            log.warning("%s (after this run's last write)", lease.lost.message)
            return
        try:
            self.release(lease)
        except Exception as exc:
            raise release_failed(self.env_name, lease.info, exc) from exc

    def _release_quietly(self, lease: Lease) -> None:
        try:
            self.release(lease)
        except Exception as exc:  # noqa: BLE001 (reported, and the block's own error is what the user sees)
            failure = release_failed(self.env_name, lease.info, exc)
            log.warning("%s (%s)", failure.message, failure.hint)

    def _mine(self, command: str, ttl: timedelta, fence: int = 0) -> LockInfo:
        now = datetime.now(UTC)
        return LockInfo(
            id=uuid.uuid4().hex[:12],
            env=self.env_name,
            owner=os.environ.get("GITHUB_ACTOR") or getpass.getuser(),
            host=socket.gethostname(),
            pid=os.getpid(),
            command=command,
            ci_run_id=ci_run_id(),
            started_at=now.isoformat(timespec="seconds"),
            expires_at=(now + ttl).isoformat(timespec="seconds"),
            fence=fence,
            ttl_seconds=ttl.total_seconds(),
            host_id=host_identity(),
            renewed_at=now.isoformat(timespec="milliseconds"),
        )

    def _attempt(
        self, command: str, ttl: timedelta, on_takeover: Callable[[LockInfo], None] | None
    ) -> tuple[Lease | None, LockInfo | None]:
        """One try at the lock, free or stale: (our lease, None) when we hold it, else (None, who holds it now)."""
        last, counter = self._fences.last()
        mine = self._mine(command, ttl, last + 1)
        sent = clock()
        etag = self._write(mine, IfNoneMatch="*")
        stale: LockInfo | None = None
        if etag is None:
            seen = self.observe()
            if seen is None:  # released between our write and our read
                return None, None
            if not seen.stale:
                return None, seen.info
            mine = replace(mine, fence=max(last, seen.info.fence) + 1)
            sent = clock()
            etag = self._write(mine, IfMatch=seen.etag)  # the compare-and-swap: only if it is still that stale lock
            if etag is None:
                return None, self.current()  # another run took it over (or released it) first
            stale = seen.info
        lease = Lease(self, mine, etag, sent)
        try:
            numbered = self._numbered(lease, counter)
        except BaseException:
            self._release_quietly(lease)
            raise
        if not numbered:
            return None, self.current()
        if stale is not None:
            log.info("took over the stale lock of %s: %s", self.env_name, stale.describe())
            if on_takeover is not None:
                on_takeover(stale)
        return lease, None

    def _ahead_of(self, ticket: str, info: LockInfo) -> int:
        return self._queue.ahead_of(ticket, info)

    def acquire(
        self,
        command: str,
        *,
        timeout: float,
        ttl: timedelta = DEFAULT_TTL,
        on_wait: Callable[[LockInfo], None] | None = None,
        on_takeover: Callable[[LockInfo], None] | None = None,
    ) -> Lease:
        """The lock, held (not yet renewed: ``hold`` starts that), once it is free or stale and no live waiter
        arrived before us; LockedError (exit 5) after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        reported: str | None = None
        freed = 0  # times in a row the lock was freed as we tried: try again at once (a few times)
        waiter = self._mine(command, ttl)
        ticket = self._queue.ticket(waiter)
        try:
            while True:
                ahead = self._ahead_of(ticket, waiter)
                if ahead == 0:
                    lease, held = self._attempt(command, ttl, on_takeover)  # its expiry counts from when we get it
                    if lease is not None:
                        log.debug("lock %s acquired (%s, fence %d)", self.key, lease.id, lease.fence)
                        return lease
                    freed = freed + 1 if held is None else 0
                    if 0 < freed <= 3:
                        continue
                else:
                    held = self.current()
                if held is not None and reported != held.id:
                    reported = held.id
                    if on_wait is not None:
                        on_wait(held)
                if time.monotonic() >= deadline:
                    raise locked_error(self.env_name, held, ahead)
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())) or 0.1)
        finally:
            self._queue.leave(ticket)

    def release(self, lease: Lease) -> None:
        """Remove our lock, only if it is still ours (a compare-and-swap on the ETag we last wrote)."""
        if self._delete(lease.etag):
            return
        seen = self.observe()  # not with that ETag: a renewal whose answer was lost, or not ours now
        if seen is not None and seen.info.id == lease.id and self._delete(seen.etag):
            return
        seen = self.observe()
        if seen is None:
            log.warning("the lock of %s was removed (broken by hand?) before this run released it", self.env_name)
        elif seen.info.id != lease.id:
            log.warning("the lock of %s was taken over by %s; not releasing it", self.env_name, seen.info.describe())
        else:
            raise DeployctlError(f"the lock of {self.env_name!r} changed under this run as it released it")
