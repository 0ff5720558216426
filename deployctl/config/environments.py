"""An environment's models: its terraform root and backend, AWS account, cluster(s), change windows, webhooks."""

# Mutable defaults ({}, []) are safe: pydantic copies them per instance; ruff cannot see that Strict is a
# pydantic model when it comes from another module.
# ruff: noqa: RUF012

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from deployctl.config.base import Name, Strict
from deployctl.config.verify import Metrics


class Backend(Strict):
    """S3 backend for terraform state; locking by S3 lockfile (conditional write)."""

    bucket: str = Field(min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+[a-z0-9]$")
    key: str = Field(min_length=1, pattern=r"^[^/].*\.tfstate$")
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    use_lockfile: bool = True
    # S3 Object Lock (COMPLIANCE) default retention of the bucket, set by `deployctl bootstrap` and the sandbox: how
    # long nobody can erase or rewrite a ledger entry (and every other object version in the bucket); 0: none
    retention_days: int = Field(default=90, ge=0, le=36500)


class Terraform(Strict):
    root: Path
    backend: Backend
    # The environment's variables file (e.g. terraform/envs/dev.tfvars), passed as -var-file: one
    # root serves every environment, and the environments differ only by this file.
    var_file: Path | None = None
    vars: dict[str, str | int | bool] = {}
    plan_max_age_minutes: int = Field(default=120, ge=1, le=7 * 24 * 60)


class Aws(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    account_id: str | None = Field(default=None, pattern=r"^\d{12}$")
    profile: str | None = None
    role_arn: str | None = Field(default=None, pattern=r"^arn:aws[a-z-]*:iam::\d{12}:role/.+$")
    # Where the AWS API lives when it is not AWS (the sandbox's moto server).
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://")


class Cluster(Strict):
    """Either an EKS cluster name (kubeconfig derived from AWS) or an explicit kubeconfig + context."""

    eks: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
    kubeconfig: Path | None = None
    context: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Cluster:
        if (self.eks is None) == (self.kubeconfig is None):
            raise ValueError("set exactly one of 'eks' (cluster name) or 'kubeconfig' (with optional 'context')")
        if self.context is not None and self.kubeconfig is None:
            raise ValueError("'context' needs 'kubeconfig'")
        return self


class ClusterSpec(Cluster):
    """One of an environment's several clusters (``clusters.NAME``): its access, region, registry and wave."""

    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")  # None: the environment's
    # The cluster's own registry (a per-region ECR): promote copies the image there and the cluster pulls from it.
    image_registry: str | None = Field(default=None, pattern=r"^[a-z0-9.-]+(:\d+)?$")
    wave: int = Field(default=1, ge=1, le=99)  # waves roll out in order, the clusters of one wave in parallel


_HM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
# a dated window may name seconds (a launch at 18:00:30); weekly ones are minutes
_DAY, _DATE = rf"(mon|tue|wed|thu|fri|sat|sun) {_HM}", rf"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}(T{_HM}(:[0-5][0-9])?)?"


class Freeze(Strict):  # change windows: promote, deploy and apply are refused inside one (exit 4) unless overridden
    timezone: ZoneInfo = ZoneInfo("UTC")
    weekly: dict[Name, Annotated[str, Field(pattern=f"^{_DAY} - {_DAY}$")]] = {}  # "fri 16:00 - mon 08:00"
    dated: dict[Name, Annotated[str, Field(pattern=f"^{_DATE} - {_DATE}: .+")]] = {}  # "START - END: reason"
    holidays: list[date] = []  # whole days in ``timezone``


# The webhook events a target may subscribe to: each one's title and builder are in deployctl/notify/events.py.
EventKind = Literal[
    "promote-succeeded",
    "promote-failed",
    "promote-refused",
    "deploy-failed",
    "lock-taken-over",
    "freeze-overridden",
]
NotifyFormat = Literal["slack", "json"]


class Notify(Strict):  # a webhook; its URL (a secret) is read from the environment variable ``url_env``
    url_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    format: NotifyFormat = "json"
    events: list[EventKind] | None = None  # None: every event


class Environment(Strict):
    terraform: Terraform | None = None
    aws: Aws
    cluster: Cluster | None = None
    clusters: dict[Name, ClusterSpec] = {}  # several clusters rolled out wave by wave (instead of ``cluster``)
    # How long a wave must have run healthy before the next wave starts (its releases are verified again then).
    wave_soak_minutes: float = Field(default=0, ge=0, le=24 * 60)
    namespace: str | None = Field(default=None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    values: Path | None = None
    # Promotion target: which environment it promotes from, and the release tag form.
    promote_from: str | None = None
    release_tag_pattern: str = "release-<semver>"
    allow_prerelease: bool = False
    # How long a digest must have run healthy in promote_from (its latest continuous healthy period, from its
    # ledger) before it may come here: crashes that come minutes after a healthy rollout (a leak, a cron, the first
    # real traffic) must have had the time to show. 0 turns it off, on purpose.
    promote_soak_minutes: float = Field(default=10, ge=0, le=30 * 24 * 60)
    # Where this environment pulls images when it is not the apps' registry (e.g. the prod account's
    # ECR): same repository names; promote copies the image into it (missing blobs, then the manifest).
    image_registry: str | None = Field(default=None, pattern=r"^[a-z0-9.-]+(:\d+)?$")
    # Protected environments only change through a reviewed, saved plan.
    protected: bool = False
    lock_timeout_seconds: int = Field(default=300, ge=0, le=3600)
    # The lock is a lease renewed every third of this while held: a dead holder's lock is free this long after.
    lock_ttl_seconds: int = Field(default=120, ge=3, le=3600)
    rollout_timeout_seconds: int = Field(default=600, ge=1, le=24 * 3600)  # a broken pod fails it at once
    freeze: Freeze = Freeze()
    notify: list[Notify] = []
    # Where the apps' metric checks query (a Prometheus-compatible API); promote runs the source's checks again
    # before it judges the gate when ``verify_before_promote`` (set on the promotion target).
    metrics: Metrics | None = None
    verify_before_promote: bool = False

    @model_validator(mode="after")
    def _deployable_or_terraform_only(self) -> Environment:
        if self.cluster is not None and self.clusters:
            raise ValueError("set 'cluster' (one) or 'clusters' (several, with waves), not both")
        if self.deployable and (self.namespace is None or self.values is None):
            raise ValueError("an environment with a 'cluster' also needs 'namespace' and 'values'")
        if not self.deployable and self.terraform is None:
            raise ValueError("an environment needs 'terraform', 'cluster', or both")
        if "<semver>" not in self.release_tag_pattern:
            raise ValueError("release_tag_pattern must contain '<semver>', e.g. 'release-<semver>'")
        return self

    @property
    def deployable(self) -> bool:
        return self.cluster is not None or bool(self.clusters)
