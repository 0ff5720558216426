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

import json
import os
import socket
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from deployctl.core.errors import DeployctlError, LockedError

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


def ci_run_id() -> str | None:
    return os.environ.get("GITHUB_RUN_ID") or os.environ.get("CI_PIPELINE_ID")


LOCK_PREFIX = "deployctl/locks"


def lock_key(env_name: str) -> str:
    return f"{LOCK_PREFIX}/{env_name}.json"


def queue_prefix(env_name: str) -> str:
    return f"{LOCK_PREFIX}/{env_name}.queue/"


def fence_key(env_name: str) -> str:
    """The last fencing number issued for the environment (it outlives the lock object, deleted on release)."""
    return f"{LOCK_PREFIX}/{env_name}.fence"


def load_lock_info(body: bytes) -> LockInfo:
    known = {f.name for f in fields(LockInfo)}
    return LockInfo(**{k: v for k, v in json.loads(body).items() if k in known})  # newer writers may add keys


def s3_now(answer: dict[str, Any]) -> datetime | None:
    """S3's clock when it answered: its Date header (whole seconds)."""
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date).astimezone(UTC) if date else None
    except (TypeError, ValueError):
        return None


def locked_error(env_name: str, held: LockInfo | None, ahead: int) -> LockedError:
    if held is None:
        queued = f"{ahead} run(s) queued before this one" if ahead else "another run took it as this one tried"
        return LockedError(
            f"environment {env_name!r} is locked: {queued}",
            "wait for them to finish, or raise --lock-timeout",
            details={"lock": None, "queued_ahead": ahead},
        )
    return LockedError(
        f"environment {env_name!r} is locked by {held.describe()}",
        f"wait for it to finish, or raise --lock-timeout; if that run is dead: "
        f"deployctl lock break {env_name} --id {held.id}",
        details={"lock": asdict(held), "queued_ahead": ahead},
    )


def release_failed(env_name: str, info: LockInfo, exc: BaseException) -> DeployctlError:
    reason = exc.message if isinstance(exc, DeployctlError) else f"{type(exc).__name__}: {exc}"
    return DeployctlError(
        f"could not release the lock of {env_name!r} (id {info.id}): {reason}",
        f"the lock stays until it expires ({info.ttl.total_seconds():.0f}s after its last renewal, by S3's clock); "
        f"to free it now: deployctl lock break {env_name} --id {info.id}",
    )
