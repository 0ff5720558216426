"""The environment lock, once held, is a lease: renewed while held, and checked right before every write.

What it takes from etcd's lease and the DynamoDB lock client:

* **Renewal** (etcd's keepalive, sent every TTL/3; DynamoDB's heartbeat thread): a background thread rewrites
  the lock object every TTL/3 with a compare-and-swap on the ETag this hold last wrote (DynamoDB conditions its
  heartbeat on the record version number it last wrote). Each renewal changes the body (``renewed_at``), hence
  the ETag, and S3 stamps a new ``LastModified``: the time a waiter judges expiry from (``lock_record``).
* **The holder's own deadline** (DynamoDB's ``LockItem.isExpired()``: lookup time + lease duration on the
  holder's clock): the hold counts as valid until TTL after it *sent* its last successful renewal. S3 stamps
  that write no earlier than it was sent, and a waiter takes over only when S3's clock is past the stamp by
  more than the TTL, so while this deadline holds, no other run can hold the lock. A holder that cannot renew
  (S3 unreachable) stops trusting its hold at that deadline, whether or not anyone took it.
* **Fencing** (etcd's ``Mutex.IsOwner()``: every write of a holder is a transaction guarded by a compare on
  its lock key's revision): every write a holder makes (ledger entry, values file, registry tag, ``helm
  upgrade``, recovery) calls ``check()`` right before it: the lock object must still carry this hold's id and
  fencing number, and the deadline above must not have passed (an S3 that does not answer that read leaves the
  deadline as the proof: the write then meets the same S3). S3 cannot make a write to another object
  conditional on the lock, so a pause between the check and the write it guards (one request) is the window
  left; the deadline keeps it shorter than a TTL.

A lost lease is final: the hold never writes again, and never releases (the lock is another run's, or S3 did
not answer: it expires by itself). The thread that holds it, when it is the main thread, is stopped at once
the way Ctrl-C stops it (children stopped, nothing more recorded: each write it tries is refused), and the
command exits 5 saying whom it lost the lock to.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from deployctl.core.errors import DeployctlError, LockedError
from deployctl.ledger.lock_record import LockInfo, Observed

if TYPE_CHECKING:
    from deployctl.ledger.lock import EnvironmentLock

log = logging.getLogger(__name__)

RENEW_EVERY = 1 / 3  # of the TTL, as etcd's keepalive
RETRY_EVERY = 1 / 10  # of the TTL: after a renewal S3 did not answer
VALID_FOR = 0.9  # of the TTL after a renewal was sent: room for the two clocks' rates to differ
JOIN_SECONDS = 1.0


def clock() -> float:
    """Seconds on a clock that never jumps and keeps counting while the machine sleeps (a suspended laptop's
    lease expires on S3 meanwhile): CLOCK_BOOTTIME on Linux, the monotonic clock elsewhere."""
    boottime = getattr(time, "CLOCK_BOOTTIME", None)
    return time.clock_gettime(boottime) if boottime is not None else time.monotonic()


class LeaseLostError(LockedError):
    """This run no longer holds its environment lock: it stops and writes nothing more (exit 5)."""


class Lease:
    """One hold of an environment lock: its id and fencing number, renewed in the background while held."""

    def __init__(self, lock: EnvironmentLock, info: LockInfo, etag: str, sent: float) -> None:
        self._lock = lock
        self._info = info
        self._etag = etag
        self._valid_until = sent + info.ttl.total_seconds() * VALID_FOR
        self._lost: LeaseLostError | None = None
        self._guard = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._interrupt: int | None = None  # the thread a loss interrupts (the main thread holding the lease)

    @property
    def info(self) -> LockInfo:
        return self._info

    @property
    def id(self) -> str:
        return self._info.id

    @property
    def fence(self) -> int:
        return self._info.fence

    @property
    def etag(self) -> str:
        """The ETag of the lock object this hold last wrote (what its release deletes)."""
        return self._etag

    @property
    def lost(self) -> LeaseLostError | None:
        return self._lost

    # ---------------------------------------------------------------- renewal

    def start(self) -> None:
        """Renew in the background until ``stop()``; a loss then interrupts this thread if it is the main one."""
        if threading.current_thread() is threading.main_thread():
            self._interrupt = threading.get_ident()
        self._thread = threading.Thread(target=self._renewals, name=f"lease-{self._info.env}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No more renewals, and a loss found from now on interrupts nobody. A loss found just before may
        raise KeyboardInterrupt here (``EnvironmentLock.hold`` turns it into the loss)."""
        with self._guard:
            self._interrupt = None
        self._stopping.set()
        if self._thread is not None:
            # A renewal S3 does not answer is not waited for: landing after the release, it finds no object
            # with its ETag (404) and writes nothing.
            self._thread.join(timeout=JOIN_SECONDS)

    def _renewals(self) -> None:
        ttl = self._info.ttl.total_seconds()
        wait = ttl * RENEW_EVERY
        while self._lost is None and not self._stopping.wait(wait):
            wait = ttl * (RENEW_EVERY if self.renew() else RETRY_EVERY)

    def renew(self) -> bool:
        """One renewal: a compare-and-swap on the ETag this hold last wrote. False when it did not renew: S3
        did not answer (tried again sooner; past the deadline the lease is lost), or another run replaced or
        removed the lock (lost)."""
        if self._lost is not None:
            return False
        sent = clock()
        now = datetime.now(UTC)
        renewed = replace(
            self._info,
            renewed_at=now.isoformat(timespec="milliseconds"),  # a new body, hence a new ETag, at each renewal
            expires_at=(now + self._info.ttl).isoformat(timespec="seconds"),
        )
        try:
            etag = self._lock.rewrite(renewed, self._etag)
        except DeployctlError as exc:
            if clock() >= self._valid_until:
                self._lose(self._unrenewed(exc.message))
            else:
                log.warning("could not renew the lock of %s (trying again): %s", self._info.env, exc.message)
            return False
        if etag is None:
            try:
                seen = self._lock.observe()
            except DeployctlError:
                seen = None
            self._lose(self._taken(seen))
            return False
        with self._guard:
            self._info, self._etag = renewed, etag
            self._valid_until = sent + self._info.ttl.total_seconds() * VALID_FOR
        log.debug("lock %s renewed (fence %d)", self._info.id, self._info.fence)
        return True

    def renumber(self, fence: int) -> bool:
        """Before the renewals start: take fencing number ``fence`` (a compare-and-swap); False when lost."""
        info = replace(self._info, fence=fence)
        etag = self._lock.rewrite(info, self._etag)
        if etag is None:
            return False
        self._info, self._etag = info, etag
        return True

    # ---------------------------------------------------------------- fencing

    def check(self) -> None:
        """Right before a write: raise LeaseLostError (exit 5) unless this hold still holds the lock, read from
        S3 now (its id and fencing number), within its own deadline. Once lost, always lost."""
        if self._lost is not None:
            raise self._lost
        if clock() >= self._valid_until:
            raise self._lose(self._unrenewed("no renewal succeeded within its time to live"))
        try:
            seen = self._lock.observe()
        except DeployctlError as exc:
            # Within its deadline no other run can hold the lock (see above): S3 not answering does not end the
            # lease, and the write it guards says for itself whether S3 answers.
            log.info("could not read the lock of %s to check it (within its deadline): %s", self._info.env, exc)
            return
        if seen is None or seen.info.id != self._info.id or seen.info.fence != self._info.fence:
            raise self._lose(self._taken(seen))

    def _lose(self, error: LeaseLostError) -> LeaseLostError:
        """The lease is lost (the first reason found stays): returns that reason."""
        with self._guard:
            if self._lost is not None:
                return self._lost
            self._lost = error
            log.info("%s", error.message)  # the command's error says it
            target = self._interrupt
            # Under the guard: once ``stop()`` has taken it, no interrupt can be sent any more.
            if target is not None and target != threading.get_ident() and _ctrl_c_raises():
                signal.pthread_kill(target, signal.SIGINT)
            return error

    def _taken(self, seen: Observed | None) -> LeaseLostError:
        env = self._info.env
        hint = (
            f"the run that holds it now goes on; see `deployctl lock status {env}` and `deployctl history {env}`, "
            "and run this command again once it is free"
        )
        mine = {"id": self._info.id, "fence": self._info.fence}
        if seen is None:
            return LeaseLostError(
                f"lost the lock of {env}: it was removed (`deployctl lock break`?) or replaced while this run held it; "
                "this run wrote nothing after that",
                hint,
                details={"lock": None, "lost": mine},
            )
        held = seen.info
        return LeaseLostError(
            f"lost the lock of {env} to {held.holder()}, which took it at {held.started_at} (fence {held.fence}); "
            "this run wrote nothing after that",
            hint,
            details={"lock": asdict(held), "lost": mine},
        )

    def _unrenewed(self, reason: str) -> LeaseLostError:
        env, ttl = self._info.env, self._info.ttl.total_seconds()
        return LeaseLostError(
            f"lost the lock of {env}: it could not be renewed within its {ttl:.0f}s time to live ({reason}), so "
            "another run may hold it now; this run wrote nothing after that",
            f"see `deployctl lock status {env}`, and run this command again once S3 answers",
            details={"lock": None, "lost": {"id": self._info.id, "fence": self._info.fence}},
        )


def _ctrl_c_raises() -> bool:
    """SIGINT raises KeyboardInterrupt in this process (not ignored, as in a shell's background job, nor
    handled by the embedding program): only then does a loss interrupt the holder; its writes are refused
    either way."""
    return signal.getsignal(signal.SIGINT) is signal.default_int_handler
