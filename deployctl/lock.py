"""The environment lock: one per environment, around everything that mutates it.

Stored beside the terraform state, in the backend bucket, as
``deployctl/locks/<env>.json``, created with a conditional write (``If-None-Match: *``)
so two runs can never both hold it. It records who holds it (owner, host, pid,
command, CI run id, started, expires). A holder whose time ran out, or whose
process is gone from this very host (a run killed halfway), is taken over, and
the take-over is reported. ``deployctl lock break`` removes a lock by hand.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from deployctl.aws import errors, is_error, translate
from deployctl.errors import LockedError, UsageError

log = logging.getLogger(__name__)

LOCK_PREFIX = "deployctl/locks"
DEFAULT_TTL = timedelta(hours=1)
POLL_SECONDS = 2.0


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
    expires_at: str

    def describe(self) -> str:
        ci = f", CI run {self.ci_run_id}" if self.ci_run_id else ""
        return f"{self.owner}@{self.host} (pid {self.pid}{ci}) running `{self.command}` since {self.started_at}"

    @property
    def expired(self) -> bool:
        return datetime.fromisoformat(self.expires_at) <= datetime.now(UTC)

    @property
    def orphaned(self) -> bool:
        """The holder ran on this host and its process no longer exists (killed halfway)."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def ci_run_id() -> str | None:
    return os.environ.get("GITHUB_RUN_ID") or os.environ.get("CI_PIPELINE_ID")


def lock_key(env_name: str) -> str:
    return f"{LOCK_PREFIX}/{env_name}.json"


class EnvironmentLock:
    """Acquire, inspect and break the lock of one environment."""

    def __init__(self, env_name: str, bucket: str, s3: Any) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.key = lock_key(env_name)
        self._s3 = s3

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def current(self) -> LockInfo | None:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except errors() as exc:
            if is_error(exc, "NoSuchKey", "404"):
                return None
            raise translate(exc, f"read the lock of {self.env_name} ({self.where})") from None
        return LockInfo(**json.loads(body))

    def _try_create(self, info: LockInfo) -> bool:
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(asdict(info)).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except errors() as exc:
            if is_error(exc, "PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                return False
            raise translate(exc, f"write the lock of {self.env_name} ({self.where})") from None
        return True

    def _delete(self) -> None:
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self.key)
        except errors() as exc:
            raise translate(exc, f"remove the lock of {self.env_name} ({self.where})") from None

    def break_lock(self, expected_id: str | None = None) -> LockInfo | None:
        """Remove the lock (only if it still has ``expected_id`` when given). Returns what was removed."""
        held = self.current()
        if held is None:
            return None
        if expected_id is not None and held.id != expected_id:
            raise UsageError(
                f"the lock of {self.env_name!r} has id {held.id}, not {expected_id}",
                "run `deployctl lock status ENV` and pass the id it shows",
            )
        self._delete()
        return held

    @contextmanager
    def hold(
        self,
        command: str,
        *,
        timeout: float,
        ttl: timedelta = DEFAULT_TTL,
        on_wait: Callable[[LockInfo], None] | None = None,
        on_takeover: Callable[[LockInfo], None] | None = None,
    ) -> Iterator[LockInfo]:
        """Hold the lock for the duration of the block; wait up to ``timeout`` seconds for it."""
        info = self.acquire(command, timeout=timeout, ttl=ttl, on_wait=on_wait, on_takeover=on_takeover)
        try:
            yield info
        finally:
            self.release(info)

    def acquire(
        self,
        command: str,
        *,
        timeout: float,
        ttl: timedelta = DEFAULT_TTL,
        on_wait: Callable[[LockInfo], None] | None = None,
        on_takeover: Callable[[LockInfo], None] | None = None,
    ) -> LockInfo:
        deadline = time.monotonic() + timeout
        reported: str | None = None
        while True:
            now = datetime.now(UTC)
            mine = LockInfo(
                id=uuid.uuid4().hex[:12],
                env=self.env_name,
                owner=os.environ.get("GITHUB_ACTOR") or getpass.getuser(),
                host=socket.gethostname(),
                pid=os.getpid(),
                command=command,
                ci_run_id=ci_run_id(),
                started_at=now.isoformat(timespec="seconds"),
                expires_at=(now + ttl).isoformat(timespec="seconds"),
            )
            if self._try_create(mine):
                log.debug("lock %s acquired (%s)", self.key, mine.id)
                return mine
            held = self.current()
            if held is None:
                continue  # released between our write and our read: try again at once
            if held.expired or held.orphaned:
                log.info("taking over stale lock of %s: %s", self.env_name, held.describe())
                if on_takeover is not None:
                    on_takeover(held)
                self.break_lock(held.id)
                continue
            if reported != held.id:
                reported = held.id
                if on_wait is not None:
                    on_wait(held)
            if time.monotonic() >= deadline:
                raise LockedError(
                    f"environment {self.env_name!r} is locked by {held.describe()}",
                    f"wait for it to finish, or raise --lock-timeout; if that run is dead: "
                    f"deployctl lock break {self.env_name} --id {held.id}",
                    details={"lock": asdict(held)},
                )
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())) or 0.1)

    def release(self, info: LockInfo) -> None:
        held = self.current()
        if held is not None and held.id == info.id:
            self._delete()
        elif held is not None:
            log.warning("lock of %s was taken over by %s; not releasing it", self.env_name, held.describe())
