"""The deploy ledger: an append-only history per environment, beside the terraform state.

One S3 object per entry, ``deployctl/history/<env>/<UTC time>-<id>.json``, written
with ``If-None-Match: *`` so an entry is never overwritten. Keys sort by time, so
the newest entries are the last keys. Each entry carries a schema version.
"""

from __future__ import annotations

import getpass
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from deployctl.aws import errors, translate
from deployctl.lock import ci_run_id

HISTORY_PREFIX = "deployctl/history"
ENTRY_SCHEMA = "deployctl/history/v1"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # orders entries written in one millisecond


def _new_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class Override:
    flag: str
    reason: str


@dataclass(frozen=True)
class Entry:
    """One thing that happened to an environment."""

    env: str
    app: str
    action: str  # deploy | promote | recover
    # started: an intent, written before helm runs; succeeded | failed: judged; unknown: helm made a revision
    # but no verdict was judged (the run died); interrupted: stopped before anything reached the cluster;
    # moved: a promotion's image moved and recorded in the values file, not deployed (``promote --no-deploy``)
    outcome: str
    digest: str | None = None
    tag: str | None = None
    commit: str | None = None
    release: str | None = None
    source_env: str | None = None
    cluster: str | None = None  # which of the environment's several clusters (None: its one cluster)
    # The rollout verdict deployctl judged from the cluster (healthy | failed); None when nothing rolled out.
    verdict: str | None = None
    intent: str | None = None  # the id of the ``started`` entry this one completes
    message: str = ""
    overrides: tuple[Override, ...] = ()
    actor: str = field(default_factory=lambda: os.environ.get("GITHUB_ACTOR") or getpass.getuser())
    ci_run_id: str | None = field(default_factory=ci_run_id)
    time: str = field(default_factory=lambda: _now())
    id: str = field(default_factory=lambda: _new_id())
    schema: str = ENTRY_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.cluster is None:  # an environment with one cluster: its entries stay as they were
            del data["cluster"]
        return data

    def written_now(self, **changes: Any) -> Entry:
        """This entry (a template filled in before the outcome is known) with ``changes``, stamped now
        with a new id: the ledger orders entries by when they were written."""
        stamp = {"time": _now(), "id": _new_id()}
        return replace(self, **{**changes, **stamp})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["overrides"] = tuple(Override(**o) for o in known.get("overrides", ()))
        return cls(**known)


class Ledger:
    """Append and read the history of one environment."""

    def __init__(self, env_name: str, bucket: str, s3: Any) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.prefix = f"{HISTORY_PREFIX}/{env_name}/"
        self._s3 = s3

    def append(self, entry: Entry) -> str:
        stamp = entry.time.replace(":", "").replace("-", "")
        key = f"{self.prefix}{stamp}-{entry.id}.json"
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(entry.to_dict(), sort_keys=True).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
            )
        except errors() as exc:
            raise translate(
                exc, f"record {entry.action} in the history of {self.env_name} (s3://{self.bucket})"
            ) from None
        return key

    def entries(self, limit: int | None = None) -> list[Entry]:
        """Entries newest first."""
        try:
            keys: list[str] = []
            paginator = self._s3.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                keys.extend(obj["Key"] for obj in page.get("Contents", ()))
            keys.sort(reverse=True)
            if limit is not None:
                keys = keys[:limit]
            return [
                Entry.from_dict(json.loads(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()))
                for key in keys
            ]
        except errors() as exc:
            raise translate(exc, f"read the history of {self.env_name} (s3://{self.bucket}/{self.prefix})") from None


ANY = "*"  # ``open_intents``' cluster: every cluster


def open_intents(entries: list[Entry], app: str | None = None, cluster: str | None = ANY) -> list[Entry]:
    """``started`` entries (newest first) that no later entry completes: a rollout in progress, or one whose
    run died before it could record the outcome. ``cluster``: only those of that cluster (None: the one)."""
    completed = {e.intent for e in entries if e.intent}
    return [
        e
        for e in entries
        if e.outcome == "started"
        and e.id not in completed
        and (app is None or e.app == app)
        and cluster in (ANY, e.cluster)
    ]
