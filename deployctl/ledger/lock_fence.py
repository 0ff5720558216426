"""The last fencing number issued for an environment's lock: ``deployctl/locks/<env>.fence``.

Every hold of the lock gets a number higher than every hold before it, a take-over and a fresh acquisition
after a release alike. A hold's id already tells holders apart (``Lease.check`` compares both), but a number
that only grows also orders them: whoever reads two holds' writes can tell the later one, and a number that
went back after a release could not. The lock object is deleted on release, so the number lives here: a
holder advances it right after taking the lock, by compare-and-swap on this object's ETag.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from deployctl.adapters.aws_errors import errors, is_error, translate
from deployctl.ledger.lock_queue import LOST

log = logging.getLogger(__name__)


class FenceCounter:
    def __init__(self, env_name: str, bucket: str, s3: Any, key: str) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.key = key
        self._s3 = s3

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def last(self) -> tuple[int, str | None]:
        """The last number issued and the ETag of its object (None: none issued yet)."""
        try:
            got = self._s3.get_object(Bucket=self.bucket, Key=self.key)
            body = got["Body"].read()
        except errors() as exc:
            if is_error(exc, "NoSuchKey", "404"):
                return 0, None
            raise translate(exc, f"read the fencing number of {self.env_name} ({self.where})") from None
        try:
            return int(json.loads(body)["fence"]), str(got["ETag"])
        except (ValueError, KeyError, TypeError):  # only the order of later numbers suffers: never exclusion
            log.warning("%s is not a fencing number: numbering from 0", self.where)
            return 0, str(got["ETag"])

    def issue(self, fence: int, lock_id: str, etag: str | None) -> bool:
        """Record ``fence`` as the last number issued if nobody issued one since ``etag`` was read."""
        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        body = json.dumps({"fence": fence, "lock": lock_id}).encode()
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=body, ContentType="application/json", **condition
            )
        except errors() as exc:
            if is_error(exc, *LOST):
                return False
            raise translate(exc, f"write the fencing number of {self.env_name} ({self.where})") from None
        return True
