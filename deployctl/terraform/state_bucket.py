"""Terraform's state bucket, created once per account before the first ``init`` (terraform cannot create its
own backend): versioned (every state kept: a bad apply can be undone from an older version), encrypted at
rest, public access blocked, and under S3 Object Lock with a COMPLIANCE default retention (``retention_days``):
it also holds deployctl's ledger, which must be append-only in fact. A bucket default (not a retention header on
each ledger write) because a write that sets retention needs s3:PutObjectRetention, which no CI role may have;
the price: every object version in the bucket is retained (README: the ledger). Locking needs nothing more: the
backend's ``use_lockfile`` takes a conditional-write lock object in the same bucket (no DynamoDB table).
Idempotent: what is already so is left as it is. Used by ``deployctl bootstrap ENV`` (real AWS) and by the
sandbox (moto) for every configuration pointed at it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from deployctl.adapters import aws_errors
from deployctl.core.errors import OperationError, UsageError

ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]}
NO_PUBLIC_ACCESS = dict.fromkeys(
    ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
)


@dataclass(frozen=True)
class BucketReport:
    bucket: str
    region: str
    changed: tuple[str, ...]  # what this run did, e.g. ("created", "versioning enabled")
    kept: tuple[str, ...]  # what already was so


def ensure(s3: Any, bucket: str, region: str, retention_days: int = 0) -> BucketReport:
    """Make ``bucket`` exist in ``region``, versioned, encrypted and private, with ``retention_days`` of Object Lock
    retention (0: none); report what changed."""
    changed: list[str] = []
    kept: list[str] = []
    if _exists(s3, bucket):
        kept.append("exists")
    else:
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=retention_days > 0, **where)
        changed.append("created")
    if s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled":
        kept.append("versioned")
    else:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        changed.append("versioning enabled")
    if _encrypted(s3, bucket):
        kept.append("encrypted")
    else:
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
        changed.append("default encryption set (SSE-S3)")
    if _private(s3, bucket):
        kept.append("public access blocked")
    else:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=NO_PUBLIC_ACCESS)
        changed.append("public access blocked")
    if retention_days > 0:
        _lock(s3, bucket, retention_days, changed, kept)
    return BucketReport(bucket, region, tuple(changed), tuple(kept))


def _lock(s3: Any, bucket: str, days: int, changed: list[str], kept: list[str]) -> None:
    """Object Lock with a COMPLIANCE default retention. An existing bucket (versioned by now) gets it too: S3 enables
    Object Lock on a versioned bucket; its objects written before are not retained, those written after are."""
    retention = _retention(s3, bucket)
    if retention is not None and retention.get("Mode") == "COMPLIANCE":
        kept.append(f"object lock (COMPLIANCE, {_period(retention)} default retention)")
        return
    rule = {"ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": days}}}
    try:
        s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=rule)
    except aws_errors.errors() as exc:
        raise OperationError(
            f"s3://{bucket} is ready but its ledger is not protected: Object Lock could not be enabled "
            f"({str(exc).splitlines()[0]})",
            f"enable it as the bucket's owner: aws s3api put-object-lock-configuration --bucket {bucket} "
            f"--object-lock-configuration '{json.dumps(rule, separators=(',', ':'))}'; then run bootstrap again",
        ) from None
    changed.append(f"object lock enabled (COMPLIANCE, {days} days default retention)")


def _retention(s3: Any, bucket: str) -> dict[str, Any] | None:
    """The bucket's default retention (None: no Object Lock, or no default retention)."""
    try:
        config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except aws_errors.errors() as exc:
        if aws_errors.is_error(exc, "ObjectLockConfigurationNotFoundError", "404"):
            return None
        raise
    if config.get("ObjectLockEnabled") != "Enabled":
        return None
    found: dict[str, Any] | None = config.get("Rule", {}).get("DefaultRetention")
    return found


def _period(retention: dict[str, Any]) -> str:
    return f"{retention['Years']} years" if retention.get("Years") else f"{retention.get('Days')} days"


def _exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except aws_errors.errors() as exc:
        if aws_errors.is_error(exc, "404", "NoSuchBucket", "NotFound"):
            return False
        if aws_errors.is_error(exc, "403", "AccessDenied", "Forbidden"):
            raise UsageError(
                f"S3 bucket {bucket!r} exists but this account cannot use it (another account's, or access denied)",
                "bucket names are global: choose another backend.bucket, or use credentials that own it",
            ) from None
        raise
    return True


def _encrypted(s3: Any, bucket: str) -> bool:
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except aws_errors.errors() as exc:
        if aws_errors.is_error(exc, "ServerSideEncryptionConfigurationNotFoundError", "404"):
            return False
        raise
    return bool(rules)


def _private(s3: Any, bucket: str) -> bool:
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except aws_errors.errors() as exc:
        if aws_errors.is_error(exc, "NoSuchPublicAccessBlockConfiguration", "404"):
            return False
        raise
    return all(block.get(key) for key in NO_PUBLIC_ACCESS)
