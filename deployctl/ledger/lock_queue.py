"""The queue of runs waiting for an environment lock: served in arrival order.

Each waiter writes a ticket ``deployctl/locks/<env>.queue/<arrival time>-<id>.json``, rewrites it every
``HEARTBEAT_SECONDS``, and tries the lock only when its ticket is the first live one. A ticket not rewritten
for ``TICKET_STALE`` by S3's clock (its waiter was killed) is skipped and removed: a dead waiter delays the
others by that much at most. Arrival is read on each waiter's own clock, so runs on hosts whose clocks
differ by more than their arrival gap may be served out of order. Correctness never depends on the queue:
when several waiters each see themselves first (tickets written at the same moment), the lock's
compare-and-swap alone keeps one holder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from deployctl.adapters.aws_errors import errors, is_error, translate
from deployctl.ledger.lock_record import LockInfo

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0  # a waiter rewrites its ticket this often (each rewrite is an S3 PUT)
TICKET_STALE = timedelta(seconds=15)  # three heartbeats missed: the waiter is dead
# A conditional write or delete lost to another run (412, 409), or the object is already gone (404).
LOST = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404")


@dataclass(frozen=True)
class _Ticket:
    key: str
    etag: str
    modified: datetime


class WaitQueue:
    """The tickets of the runs waiting for one environment's lock."""

    def __init__(self, env_name: str, bucket: str, s3: Any, prefix: str, where: str) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.prefix = prefix
        self.where = where
        self._s3 = s3
        self._beats: dict[str, float] = {}  # our ticket -> when we last wrote it (monotonic)

    def ticket(self, waiter: LockInfo) -> str:
        return f"{self.prefix}{time.time_ns():020d}-{waiter.id}.json"

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
            pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
            for page in pages:
                found += [_Ticket(o["Key"], o["ETag"], o["LastModified"]) for o in page.get("Contents", [])]
        except errors() as exc:
            raise translate(exc, f"list the queue for the lock of {self.env_name} ({self.where})") from None
        return sorted(found, key=lambda t: t.key)

    def ahead_of(self, ticket: str, info: LockInfo) -> int:
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
                self.leave(t.key, t.etag)
            elif t.key < ticket:
                ahead += 1
        return ahead

    def leave(self, key: str, etag: str | None = None) -> None:
        self._beats.pop(key, None)
        condition = {"IfMatch": etag} if etag else {}
        try:
            self._s3.delete_object(Bucket=self.bucket, Key=key, **condition)
        except errors() as exc:  # a left-over ticket only delays others until it is judged dead
            if not is_error(exc, *LOST):
                log.warning("could not remove the lock queue ticket %s: %s", key, translate(exc).message)
