"""The environment lock: one per environment, around everything that mutates it.

Stored beside the terraform state, in the backend bucket, as ``deployctl/locks/<env>.json``. It records
who holds it (owner, host, pid, command, CI run id, started, expires). Every change to it is a
compare-and-swap on S3 conditional writes, so under any race at most one run holds it:

* taking a free lock: ``PutObject`` with ``If-None-Match: *`` (fails with 412 when it exists);
* taking over a stale lock (its expiry passed, or its holder's process is gone from this very host):
  ``PutObject`` of our lock with ``If-Match: <ETag of the stale lock we read>``. When another run replaced
  or removed it first, S3 answers 412 (or 404/409) and we go back to waiting; the take-over is reported;
* releasing, and ``deployctl lock break --id``: ``DeleteObject`` with ``If-Match: <ETag>``, so only that
  very lock is removed (ours: the ETag our write returned). A lock already gone is "not locked".

S3 supports both conditions on general purpose buckets (conditional writes and conditional deletes; a
delete with an ETag also needs ``s3:GetObject``); the moto of the lab implements both.

Waiters are served in arrival order: each waiter writes a ticket ``deployctl/locks/<env>.queue/<arrival
time>-<id>.json``, rewrites it every ``HEARTBEAT_SECONDS``, and tries the lock only when its ticket is the
first live one. A ticket not rewritten for ``TICKET_STALE`` by S3's clock (its waiter was killed) is
skipped and removed: a dead waiter delays the others by that much at most. Arrival is read on each
waiter's own clock, so runs on hosts whose clocks differ by more than their arrival gap may be served out
of order. Correctness never depends on the queue: when several waiters each see themselves first (tickets
written at the same moment), the compare-and-swap alone keeps one holder.

A failure to release never replaces the error of the operation: it is a warning beside that error, or,
after an operation that succeeded, the command's error (exit 1) naming the ``lock break`` to run.
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
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from deployctl.aws import errors, is_error, translate
from deployctl.errors import DeployctlError, LockedError, UsageError

log = logging.getLogger(__name__)

LOCK_PREFIX = "deployctl/locks"
DEFAULT_TTL = timedelta(hours=1)
POLL_SECONDS = 2.0
HEARTBEAT_SECONDS = 5.0  # a waiter rewrites its ticket this often (each rewrite is an S3 PUT)
TICKET_STALE = timedelta(seconds=15)  # three heartbeats missed: the waiter is dead
# A conditional write or delete lost to another run (412, 409), or the object is already gone (404).
LOST = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404")


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

    @property
    def stale(self) -> bool:
        return self.expired or self.orphaned


def ci_run_id() -> str | None:
    return os.environ.get("GITHUB_RUN_ID") or os.environ.get("CI_PIPELINE_ID")


def lock_key(env_name: str) -> str:
    return f"{LOCK_PREFIX}/{env_name}.json"


def queue_prefix(env_name: str) -> str:
    return f"{LOCK_PREFIX}/{env_name}.queue/"


def _load(body: bytes) -> LockInfo:
    known = {f.name for f in fields(LockInfo)}
    return LockInfo(**{k: v for k, v in json.loads(body).items() if k in known})  # newer writers may add keys


@dataclass(frozen=True)
class _Ticket:
    key: str
    etag: str
    modified: datetime


class EnvironmentLock:
    """Acquire, inspect and break the lock of one environment."""

    def __init__(self, env_name: str, bucket: str, s3: Any) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.key = lock_key(env_name)
        self._s3 = s3
        self._etags: dict[str, str] = {}  # lock id -> ETag of the lock object we wrote
        self._beats: dict[str, float] = {}  # our queue ticket -> when we last wrote it (monotonic)

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    # ---------------------------------------------------------------- the lock object

    def _read(self) -> tuple[LockInfo, str] | None:
        """The stored lock and its ETag (what a compare-and-swap compares), or None when there is none."""
        try:
            got = self._s3.get_object(Bucket=self.bucket, Key=self.key)
            body = got["Body"].read()
        except errors() as exc:
            if is_error(exc, "NoSuchKey", "404"):
                return None
            raise translate(exc, f"read the lock of {self.env_name} ({self.where})") from None
        return _load(body), str(got["ETag"])

    def current(self) -> LockInfo | None:
        read = self._read()
        return read[0] if read else None

    def _write(self, info: LockInfo, **condition: str) -> bool:
        """Write our lock if ``condition`` (If-None-Match / If-Match) holds; False when another run won."""
        try:
            put = self._s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=json.dumps(asdict(info)).encode(),
                ContentType="application/json",
                **condition,
            )
        except errors() as exc:
            if is_error(exc, *LOST):
                return False
            raise translate(exc, f"write the lock of {self.env_name} ({self.where})") from None
        self._etags[info.id] = str(put["ETag"])
        return True

    def _delete(self, etag: str) -> bool:
        """Delete the lock if it is still the object with ``etag``; False when it changed or is gone."""
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=etag)
        except errors() as exc:
            if is_error(exc, *LOST):
                return False
            raise translate(exc, f"remove the lock of {self.env_name} ({self.where})") from None
        return True

    def break_lock(self, expected_id: str | None = None) -> LockInfo | None:
        """Remove the lock (only if it still has ``expected_id`` when given). Returns what was removed,
        None when there was no lock."""
        for _ in range(3):
            read = self._read()
            if read is None:
                return None
            held, etag = read
            if expected_id is not None and held.id != expected_id:
                raise UsageError(
                    f"the lock of {self.env_name!r} has id {held.id}, not {expected_id}",
                    f"run `deployctl lock status {self.env_name}` and pass the id it shows",
                )
            if self._delete(etag):
                return held
        raise LockedError(
            f"the lock of {self.env_name!r} changed three times while breaking it: other runs are taking it",
            f"run `deployctl lock status {self.env_name}`",
        )

    # ---------------------------------------------------------------- the queue of waiters

    def _heartbeat(self, key: str, info: LockInfo) -> None:
        """Write (or rewrite) our ticket: its LastModified, by S3's clock, says we are alive. Each beat
        changes its ETag, so removing a dead waiter's ticket never removes one that just came back."""
        beat = {"id": info.id, "host": info.host, "pid": info.pid, "command": info.command, "beat": time.time()}
        body = json.dumps(beat).encode()
        try:
            self._s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")
        except errors() as exc:
            raise translate(exc, f"queue for the lock of {self.env_name} ({self.where})") from None

    def _tickets(self) -> list[_Ticket]:
        found: list[_Ticket] = []
        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=queue_prefix(self.env_name)
            )
            for page in pages:
                found += [_Ticket(o["Key"], o["ETag"], o["LastModified"]) for o in page.get("Contents", [])]
        except errors() as exc:
            raise translate(exc, f"list the queue for the lock of {self.env_name} ({self.where})") from None
        return sorted(found, key=lambda t: t.key)

    def _ahead_of(self, ticket: str, info: LockInfo) -> int:
        """How many live waiters arrived before us (dead waiters' tickets removed); our ticket is
        (re)written first when its last heartbeat is due."""
        if time.monotonic() - self._beats.get(ticket, -HEARTBEAT_SECONDS) >= HEARTBEAT_SECONDS:
            self._heartbeat(ticket, info)
            self._beats[ticket] = time.monotonic()
        tickets = self._tickets()
        newest = max((t.modified for t in tickets), default=None)  # S3's "now", within a heartbeat
        ahead = 0
        for t in tickets:
            if newest is not None and newest - t.modified > TICKET_STALE:
                log.info("removing the ticket of a dead waiter for the lock of %s: %s", self.env_name, t.key)
                self._dequeue(t.key, t.etag)
            elif t.key < ticket:
                ahead += 1
        return ahead

    def _dequeue(self, key: str, etag: str | None = None) -> None:
        condition = {"IfMatch": etag} if etag else {}
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key, **condition)
        except errors() as exc:  # a left-over ticket only delays others until it is judged dead
            if not is_error(exc, *LOST):
                log.warning("could not remove the lock queue ticket %s: %s", key, translate(exc).message)

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
    ) -> Iterator[LockInfo]:
        """Hold the lock for the duration of the block; wait up to ``timeout`` seconds for it.

        When the block fails, a failure to release is logged as a warning and the block's error goes on;
        when the block succeeded, it is the error (exit 1), with the ``lock break`` to run."""
        info = self.acquire(command, timeout=timeout, ttl=ttl, on_wait=on_wait, on_takeover=on_takeover)
        try:
            yield info
        except BaseException:
            try:
                self.release(info)
            except Exception as exc:  # noqa: BLE001 (reported, and the block's own error is what the user sees)
                failure = _release_failed(self.env_name, info, exc)
                log.warning("%s (%s)", failure.message, failure.hint)
            raise
        try:
            self.release(info)
        except Exception as exc:
            raise _release_failed(self.env_name, info, exc) from exc

    def _mine(self, command: str, ttl: timedelta) -> LockInfo:
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
        )

    def _attempt(self, mine: LockInfo, on_takeover: Callable[[LockInfo], None] | None) -> tuple[bool, LockInfo | None]:
        """One try at the lock, free or stale: (True, None) when we hold it, else (False, who holds it now)."""
        if self._write(mine, IfNoneMatch="*"):
            return True, None
        read = self._read()
        if read is None:  # released between our write and our read
            return False, None
        held, etag = read
        if not held.stale:
            return False, held
        if self._write(mine, IfMatch=etag):  # the compare-and-swap: only if it is still that stale lock
            log.info("took over the stale lock of %s: %s", self.env_name, held.describe())
            if on_takeover is not None:
                on_takeover(held)
            return True, None
        return False, self.current()  # another run took it over (or released it) first

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
        freed = 0  # times in a row the lock was freed as we tried: try again at once (a few times)
        waiter = self._mine(command, ttl)
        ticket = f"{queue_prefix(self.env_name)}{time.time_ns():020d}-{waiter.id}.json"
        try:
            while True:
                ahead = self._ahead_of(ticket, waiter)
                if ahead == 0:
                    mine = self._mine(command, ttl)  # its expiry counts from when we get it
                    taken, held = self._attempt(mine, on_takeover)
                    if taken:
                        log.debug("lock %s acquired (%s)", self.key, mine.id)
                        return mine
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
                    raise _locked(self.env_name, held, ahead)
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())) or 0.1)
        finally:
            self._beats.pop(ticket, None)
            self._dequeue(ticket)

    def release(self, info: LockInfo) -> None:
        """Remove our lock, only if it is still ours (a compare-and-swap on the ETag we wrote)."""
        etag = self._etags.pop(info.id, None)
        if etag is not None and self._delete(etag):
            return
        read = self._read()  # not with that ETag: acquired through another EnvironmentLock, or not ours now
        if read is not None and read[0].id == info.id and self._delete(read[1]):
            return
        held = self.current()
        if held is None:
            log.warning("the lock of %s was removed (broken by hand?) before this run released it", self.env_name)
        elif held.id != info.id:
            log.warning("the lock of %s was taken over by %s; not releasing it", self.env_name, held.describe())
        else:
            raise DeployctlError(f"the lock of {self.env_name!r} changed under this run as it released it")


def _locked(env_name: str, held: LockInfo | None, ahead: int) -> LockedError:
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


def _release_failed(env_name: str, info: LockInfo, exc: BaseException) -> DeployctlError:
    reason = exc.message if isinstance(exc, DeployctlError) else f"{type(exc).__name__}: {exc}"
    return DeployctlError(
        f"could not release the lock of {env_name!r} (id {info.id}): {reason}",
        f"the lock stays until it expires ({info.expires_at}); to free it now: "
        f"deployctl lock break {env_name} --id {info.id}",
    )
