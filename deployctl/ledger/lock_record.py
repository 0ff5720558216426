"""What the environment lock's object says, and how a reader judges it: who holds it (``LockInfo``), the
identity of the host its holder runs on, and its expiry by S3's own clock (``Observed``).

Expiry is judged on S3's clock, never on the reader's or the holder's: the lock stores its time to live
(``ttl_seconds``); a renewal rewrites the object, so its ``LastModified`` is the last renewal, stamped by S3;
and S3's ``Date`` header on the answer that read it is S3's "now". A lock is expired when S3's now is past
its last renewal by more than its TTL. Two runners whose clocks disagree by hours still agree on that.
(The DynamoDB lock client gets the same independence another way: a waiter takes over only after watching
the record version stay unchanged for a lease duration on its own monotonic clock. That makes every new
waiter wait a full TTL even for a lock dead for hours, and ``lock status`` could not say when it expires.)
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

DEFAULT_TTL = timedelta(minutes=2)
# S3's Last-Modified and Date headers count whole seconds: one more second makes "expired" certain.
CLOCK_RESOLUTION = timedelta(seconds=1)


@dataclass(frozen=True)
class LockInfo:
    id: str
    env: str
    owner: str
    host: str
    pid: int
    command: str
    ci_run_id: str | None
    started_at: str
    expires_at: str  # the holder's clock at its last renewal + TTL: shown to people, never judged
    fence: int = 0  # the fencing number: a later holder has a higher one
    ttl_seconds: float | None = None  # None: written by a deployctl without leases (never renewed)
    host_id: str | None = None  # ``host_identity()`` of the holder; None: its process is never judged
    renewed_at: str | None = None  # the holder's clock at its last renewal (S3's: the object's LastModified)

    def describe(self) -> str:
        return f"{self.holder()} since {self.started_at}"

    def holder(self) -> str:
        ci = f", CI run {self.ci_run_id}" if self.ci_run_id else ""
        return f"{self.owner}@{self.host} (pid {self.pid}{ci}) running `{self.command}`"

    @property
    def ttl(self) -> timedelta:
        if self.ttl_seconds is not None:
            return timedelta(seconds=self.ttl_seconds)
        # a lock from before leases was written once, at its start, with its whole lifetime
        return datetime.fromisoformat(self.expires_at) - datetime.fromisoformat(self.started_at)

    @property
    def orphaned(self) -> bool:
        """The holder ran on this very host, in this PID namespace, and its process no longer exists (killed
        halfway). A hostname alone is not enough: two CI containers may share one and each has its own PIDs."""
        if self.host_id is None or self.host_id != host_identity():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def host_identity() -> str | None:
    """Where a PID means the same process: the hostname, the boot (a rebooted host reuses PIDs) and the PID
    namespace (``/proc/self/ns/pid``: each container has its own). None where Linux's /proc cannot say: the
    process of a holder is then never judged, only its expiry."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = Path("/proc/self/ns/pid").stat().st_ino
    except OSError:
        return None
    return f"{socket.gethostname()}/{boot}/pid:[{namespace}]"


@dataclass(frozen=True)
class Observed:
    """The lock as one read saw it, with S3's times."""

    info: LockInfo
    etag: str
    renewed: datetime  # LastModified: when it was taken or last renewed, on S3's clock
    now: datetime | None  # S3's clock when it answered (its Date header); None when it sent none

    @property
    def expires(self) -> datetime:
        return self.renewed + self.info.ttl

    @property
    def expired(self) -> bool:
        """By S3's clock only. An answer without a Date (S3 always sends one) never expires a lock: the run
        waits, and ``lock break`` frees it."""
        return self.now is not None and self.now - self.renewed > self.info.ttl + CLOCK_RESOLUTION

    @property
    def stale(self) -> bool:
        return self.expired or self.info.orphaned
