"""The sandbox's terraform state buckets, made in moto for every environment of a configuration (versioned, under
Object Lock)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from deployctl.config import DeployctlConfig
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.state_file import read_state, write_state
from deployctl.terraform import state_bucket


def bootstrap_state_buckets(lab: Lab, settings: DeployctlConfig) -> list[str]:
    """``settings``' state buckets in ``lab``'s moto, for a lab without a state file (bench, tests)."""
    buckets = _backends(settings)
    _create_buckets(lab.moto_url, buckets)
    return sorted(buckets)


def _backends(settings: DeployctlConfig) -> dict[str, tuple[str, int]]:
    """Each state bucket of ``settings`` -> its region and Object Lock retention (the longest asked for)."""
    found: dict[str, tuple[str, int]] = {}
    for env in settings.environments.values():
        if env.terraform is not None:
            backend = env.terraform.backend
            days = max(backend.retention_days, found.get(backend.bucket, ("", 0))[1])
            found[backend.bucket] = (backend.region, days)
    return found


def _create_buckets(moto_url: str, buckets: Mapping[str, tuple[str, int]]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto's documented fake credentials)
    )
    for bucket, (region, retention_days) in buckets.items():
        state_bucket.ensure(s3, bucket, region, retention_days)


def ensure_state_buckets(path: Path, settings: DeployctlConfig) -> list[str]:
    """Create the state buckets of ``settings``' environments in the sandbox of ``path`` (versioned, encrypted,
    public access blocked, Object Lock: what `deployctl bootstrap ENV` does in an account) unless the state says
    they exist: any configuration pointed at the sandbox gets its backend, not only the one it was started from."""
    data = read_state(path)
    if data is None or not data.get("moto_url"):
        return []
    backends = _backends(settings)
    missing = sorted(set(backends) - set(data.get("state_buckets", [])))
    if not missing:
        return []
    _create_buckets(data["moto_url"], {bucket: backends[bucket] for bucket in missing})
    data = read_state(path) or data  # another command may have added some meanwhile
    data["state_buckets"] = sorted({*data.get("state_buckets", []), *missing})
    write_state(path, data)
    return missing
