"""The environment lock's object on S3 (``deployctl/locks/<env>.json``): read, written and deleted only by
compare-and-swap on its ETag (``lock`` takes, renews and releases it)."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from deployctl.adapters.aws_errors import errors, is_error, translate
from deployctl.core.errors import LockedError, UsageError
from deployctl.ledger.lock_queue import LOST
from deployctl.ledger.lock_record import (
    LockInfo,
    Observed,
    load_lock_info,
    lock_key,
    s3_now,
)


class LockObject:
    """The stored lock of one environment: what it holds, and its conditional writes and deletes."""

    def __init__(self, env_name: str, bucket: str, s3: Any) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.key = lock_key(env_name)
        self._s3 = s3

    @property
    def where(self) -> str:
        """The lock object's S3 URL, as messages name it."""
        return f"s3://{self.bucket}/{self.key}"

    def observe(self) -> Observed | None:
        """The stored lock, its ETag (what a compare-and-swap compares) and S3's times; None when there is none."""
        try:
            got = self._s3.get_object(Bucket=self.bucket, Key=self.key)
            body = got["Body"].read()
        except errors() as exc:
            if is_error(exc, "NoSuchKey", "404"):
                return None
            raise translate(exc, f"read the lock of {self.env_name} ({self.where})") from None
        return Observed(load_lock_info(body), str(got["ETag"]), got["LastModified"], s3_now(got))

    def current(self) -> LockInfo | None:
        seen = self.observe()
        return seen.info if seen else None

    def _write(self, info: LockInfo, **condition: str) -> str | None:
        """Write our lock if ``condition`` (If-None-Match / If-Match) holds: its new ETag, None when another
        run won."""
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
                return None
            raise translate(exc, f"write the lock of {self.env_name} ({self.where})") from None
        return str(put["ETag"])

    def rewrite(self, info: LockInfo, etag: str) -> str | None:
        """Our lock rewritten (a renewal, a new number) only if it is still the object with ``etag``: its new
        ETag, None when another run replaced or removed it."""
        return self._write(info, IfMatch=etag)

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
            seen = self.observe()
            if seen is None:
                return None
            if expected_id is not None and seen.info.id != expected_id:
                raise UsageError(
                    f"the lock of {self.env_name!r} has id {seen.info.id}, not {expected_id}",
                    f"run `deployctl lock status {self.env_name}` and pass the id it shows",
                )
            if self._delete(seen.etag):
                return seen.info
        raise LockedError(
            f"the lock of {self.env_name!r} changed three times while breaking it: other runs are taking it",
            f"run `deployctl lock status {self.env_name}`",
        )
