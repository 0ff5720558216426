"""Terraform's state bucket, created once per account before the first ``init`` (terraform cannot create its
own backend): versioned (every state kept: a bad apply can be undone from an older version), encrypted at
rest, public access blocked. Locking needs nothing more: the backend's ``use_lockfile`` takes a conditional-
write lock object in the same bucket (no DynamoDB table). Idempotent: what is already so is left as it is.
Used by ``deployctl bootstrap ENV`` (real AWS) and by the sandbox (moto) for every configuration pointed at it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deployctl import aws
from deployctl.errors import UsageError

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


def ensure(s3: Any, bucket: str, region: str) -> BucketReport:
    """Make ``bucket`` exist in ``region``, versioned, encrypted and private; report what changed."""
    changed: list[str] = []
    kept: list[str] = []
    if _exists(s3, bucket):
        kept.append("exists")
    else:
        where = {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, **where)
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
    return BucketReport(bucket, region, tuple(changed), tuple(kept))


def _exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
    except aws.errors() as exc:
        if aws.is_error(exc, "404", "NoSuchBucket", "NotFound"):
            return False
        if aws.is_error(exc, "403", "AccessDenied", "Forbidden"):
            raise UsageError(
                f"S3 bucket {bucket!r} exists but this account cannot use it (another account's, or access denied)",
                "bucket names are global: choose another backend.bucket, or use credentials that own it",
            ) from None
        raise
    return True


def _encrypted(s3: Any, bucket: str) -> bool:
    try:
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    except aws.errors() as exc:
        if aws.is_error(exc, "ServerSideEncryptionConfigurationNotFoundError", "404"):
            return False
        raise
    return bool(rules)


def _private(s3: Any, bucket: str) -> bool:
    try:
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except aws.errors() as exc:
        if aws.is_error(exc, "NoSuchPublicAccessBlockConfiguration", "404"):
            return False
        raise
    return all(block.get(key) for key in NO_PUBLIC_ACCESS)
