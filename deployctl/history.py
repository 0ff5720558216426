"""The deploy ledger: an append-only history per environment, beside the terraform state.

One S3 object per entry, ``deployctl/history/<env>/<UTC time>-<id>.json``, written
with ``If-None-Match: *`` so an entry is never overwritten, into a bucket whose Object Lock
(COMPLIANCE, a default retention: ``state_bucket``) keeps every version. Each entry carries a
schema version. Reading lists every version: a deleted, rewritten or unreadable entry is a
problem named by its key (``ledger_audit``), never skipped. Entries are ordered and timed by
S3's clock (``LastModified``: ``Entry.recorded_at``), not by the writer's (``Entry.time``).
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from deployctl.aws import errors, is_error, translate
from deployctl.ledger_audit import (
    CLOCK_BOUND,
    LedgerProblem,
    LedgerRead,
    Version,
    audit,
    clock_offset,
    iso,
    server_time,
    skew_problem,
)
from deployctl.lock import ci_run_id

log = logging.getLogger(__name__)

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
class Check:
    """One verification check of a rollout (or of ``deployctl verify``) as the ledger keeps it."""

    name: str
    kind: str  # helm-test | http | metric
    outcome: str  # passed | failed | error (could not be judged: configuration, a dependency down)
    line: str = ""  # what it saw: the first failing line, or what passed


@dataclass(frozen=True)
class Entry:
    """One thing that happened to an environment."""

    env: str
    app: str
    action: str  # deploy | promote | recover | verify (the checks run again on what runs: ``deployctl verify``)
    # started: an intent, written before helm runs; succeeded | failed: judged; unknown: helm made a revision
    # but no verdict was judged (the run died); interrupted: stopped before anything reached the cluster;
    # moved: a promotion's image moved and recorded in the values file, not deployed (``promote --no-deploy``);
    # unchanged: a deploy of what already ran (no helm revision), judged as it was (verdict healthy | failed)
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
    # Verification after a healthy rollout: passed | failed | skipped (no checks configured) | error (a check could
    # not run) | unknown (stopped halfway); None: not verified (an entry from before verification, or a rollout that
    # did not get there).
    verified: str | None = None
    checks: tuple[Check, ...] = ()
    message: str = ""
    overrides: tuple[Override, ...] = ()
    actor: str = field(default_factory=lambda: os.environ.get("GITHUB_ACTOR") or getpass.getuser())
    ci_run_id: str | None = field(default_factory=ci_run_id)
    time: str = field(default_factory=lambda: _now())  # the writer's clock: its claim, never trusted for order
    id: str = field(default_factory=lambda: _new_id())
    schema: str = ENTRY_SCHEMA
    # S3's clock: the LastModified of the object it was read from (None: not read from S3). Never written.
    recorded_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.cluster is None:  # an environment with one cluster: its entries stay as they were
            del data["cluster"]
        if self.recorded_at is None:
            del data["recorded_at"]
        if self.verified is None and not self.checks:  # entries that were not verified stay as they were
            del data["verified"], data["checks"]
        return data

    @property
    def at(self) -> str:
        """When it happened by the one trusted clock: S3's, for an entry read from the ledger."""
        return self.recorded_at or self.time

    @property
    def order(self) -> tuple[str, str, str]:
        """Oldest first: by S3's clock, then (the same second) by the writer's."""
        return (self.at, self.time, self.id)

    @property
    def skew(self) -> timedelta | None:
        """How far the writer's clock was ahead of S3's when it wrote this entry (None: not read from S3)."""
        if self.recorded_at is None:
            return None
        return _aware(self.time) - _aware(self.recorded_at)

    @property
    def skewed(self) -> bool:
        """Written by a clock more than ``CLOCK_BOUND`` off S3's: shown, never counted as evidence."""
        skew = self.skew
        return skew is not None and abs(skew) > CLOCK_BOUND

    def written_now(self, **changes: Any) -> Entry:
        """This entry (a template filled in before the outcome is known) with ``changes``, stamped now
        with a new id: the ledger orders entries by when they were written."""
        stamp = {"time": _now(), "id": _new_id()}
        return replace(self, **{**changes, **stamp})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entry:
        """An entry as written; ``recorded_at`` is S3's to say, never the writer's."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "recorded_at"}
        known["overrides"] = tuple(Override(**o) for o in known.get("overrides", ()))
        known["checks"] = tuple(Check(**c) for c in known.get("checks", ()))
        return cls(**known)


def _aware(moment: str) -> datetime:
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def parse(key: str, body: bytes, modified: datetime) -> tuple[Entry | None, LedgerProblem | None]:
    """The entry stored at ``key`` (S3 says it was written at ``modified``), or why it cannot be read."""
    try:
        data = json.loads(body)
    except ValueError as exc:  # not JSON, or not UTF-8
        return None, LedgerProblem("corrupt", key, f"not JSON: {str(exc).splitlines()[0][:200]}")
    entry, why = _entry_of(data)
    if entry is None:
        return None, LedgerProblem("corrupt", key, f"not a ledger entry this deployctl reads: {why}")
    return replace(entry, recorded_at=iso(modified)), None


def _entry_of(data: Any) -> tuple[Entry | None, str]:
    if not isinstance(data, dict):
        return None, f"a JSON {type(data).__name__}, not an object"
    if data.get("schema") != ENTRY_SCHEMA:
        return None, f"schema {data.get('schema')!r}, not {ENTRY_SCHEMA}"
    try:
        entry = Entry.from_dict(data)
        _aware(entry.time)
    except (ValueError, TypeError) as exc:  # a field missing or of another type, a time that is not one
        return None, str(exc).splitlines()[0][:200]
    wrong = [name for name in ("env", "app", "action", "outcome", "id") if not isinstance(getattr(entry, name), str)]
    return (None, f"{', '.join(wrong)} not a string") if wrong else (entry, "")


class Ledger:
    """Append and read the history of one environment. ``warn``: where its warnings go (stderr), each said once."""

    def __init__(self, env_name: str, bucket: str, s3: Any, warn: Callable[[str], None] | None = None) -> None:
        self.env_name = env_name
        self.bucket = bucket
        self.prefix = f"{HISTORY_PREFIX}/{env_name}/"
        self._s3 = s3
        self._warn = warn or (lambda message: log.warning("%s", message))
        self._checked = False
        # (key, version id, read by version) -> the parsed entry: a version's bytes never change, and every rollout of
        # a release reads the whole ledger again (issue 29: one GET per entry per read, each app, grew with history)
        self._parsed: dict[tuple[str, str, bool], tuple[Entry | None, LedgerProblem | None]] = {}

    def append(self, entry: Entry) -> str:
        stamp = entry.time.replace(":", "").replace("-", "")
        key = f"{self.prefix}{stamp}-{entry.id}.json"
        if not self._checked:
            self._checked = True
            self._check_bucket()
        data = entry.to_dict()
        data.pop("recorded_at", None)  # S3's clock says when it was written
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=json.dumps(data, sort_keys=True).encode(),
                ContentType="application/json",
                IfNoneMatch="*",
                ChecksumAlgorithm="SHA256",  # S3 requires a checksum for a write under Object Lock retention
            )
        except errors() as exc:
            raise translate(
                exc, f"record {entry.action} in the history of {self.env_name} (s3://{self.bucket})"
            ) from None
        return key

    def _check_bucket(self) -> None:
        """Before the first write, warn (never fail): when the bucket keeps no Object Lock retention, anyone allowed
        to delete there can erase an entry; when this machine's clock is off S3's, its entries will not count."""
        sent = datetime.now(UTC)
        where = f"the ledger of {self.env_name} (s3://{self.bucket})"
        fix = f"whoever may delete there can erase its entries; `deployctl bootstrap {self.env_name}` locks it"
        missing: str | None = None
        try:
            response = self._s3.get_object_lock_configuration(Bucket=self.bucket)
            config = response.get("ObjectLockConfiguration", {})
            if config.get("ObjectLockEnabled") != "Enabled":
                missing = f"has no Object Lock: {fix}"
            elif "DefaultRetention" not in config.get("Rule", {}):
                missing = f"has Object Lock but no default retention: {fix}"
        except errors() as exc:
            response = getattr(exc, "response", None) or {}
            if is_error(exc, "ObjectLockConfigurationNotFoundError"):
                missing = f"has no Object Lock: {fix}"
            else:  # e.g. a role without s3:GetBucketObjectLockConfiguration
                missing = f"could not be checked for Object Lock: {str(exc).splitlines()[0]} (terraform/README.md)"
        received = datetime.now(UTC)
        if missing is not None:
            self._warn(f"{where} {missing} (README: the ledger)")
        headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}) if isinstance(response, dict) else {}
        offset = clock_offset(headers.get("date"), sent, received)
        if offset is not None and abs(offset) > CLOCK_BOUND:
            side = "ahead of" if offset > timedelta() else "behind"
            self._warn(
                f"this machine's clock is {int(abs(offset).total_seconds())}s {side} S3's (its Date header): "
                f"the entries it writes to {where} are flagged clock_skew and never count as evidence; sync its clock"
            )

    def read(self, limit: int | None = None) -> LedgerRead:
        """Every entry newest first by S3's clock (``limit``: the newest ones), and every problem found (by key)."""
        doing = f"read the history of {self.env_name} (s3://{self.bucket}/{self.prefix})"
        try:
            versions, read_at, skipped = self._versions()
            chosen, problems = audit(versions)
            tampered = {p.key for p in problems}
            entries: list[Entry] = []
            by_key: dict[str, Entry] = {}
            for version in chosen if limit is None else chosen[:limit]:
                entry, problem = self._entry(version, by_version=version.key in tampered)
                if problem is None and entry is not None:
                    problem = skew_problem(version.key, entry)
                    entries.append(entry)
                    by_key[version.key] = entry
                if problem is not None:
                    problems.append(problem)
        except errors() as exc:
            raise translate(exc, doing) from None
        problems = [replace(p, entry=p.entry or by_key.get(p.key)) for p in problems]
        entries.sort(key=lambda e: e.order, reverse=True)
        return LedgerRead(entries, tuple(problems), read_at, skipped)

    def _versions(self) -> tuple[list[Version], datetime | None, tuple[str, ...]]:
        """Every version and delete marker under the prefix, and S3's clock at the listing. A role that may not
        list versions (s3:ListBucketVersions) gets the current objects, and the read says what it could not check."""
        found: list[Version] = []
        read_at = None
        try:
            for page in self._pages("list_object_versions"):
                read_at = read_at or _server_time(page)
                found.extend(Version(v["Key"], v.get("VersionId"), v["LastModified"]) for v in page.get("Versions", ()))
                found.extend(
                    Version(m["Key"], m.get("VersionId"), m["LastModified"], delete_marker=True)
                    for m in page.get("DeleteMarkers", ())
                )
        except errors() as exc:
            if not is_error(exc, "AccessDenied", "403"):
                raise
        else:
            return found, read_at, ()
        for page in self._pages("list_objects_v2"):
            read_at = read_at or _server_time(page)
            found.extend(Version(o["Key"], None, o["LastModified"]) for o in page.get("Contents", ()))
        why = "s3:ListBucketVersions denied: a deleted or rewritten entry cannot be detected (see terraform/README.md)"
        return found, read_at, (why,)

    def _pages(self, operation: str) -> Iterator[dict[str, Any]]:
        paginator = self._s3.get_paginator(operation)
        yield from paginator.paginate(Bucket=self.bucket, Prefix=self.prefix)

    def _entry(self, version: Version, *, by_version: bool) -> tuple[Entry | None, LedgerProblem | None]:
        """The entry of ``version``: a tampered key's is read by its version id (the first one written); a version
        read before in this process is not read again (listed without a version id: always read)."""
        pinned = version.version_id not in (None, "null")
        memo = (version.key, str(version.version_id), by_version)
        if pinned and memo in self._parsed:
            return self._parsed[memo]
        found = self._read_entry(version, by_version=by_version)
        if pinned and found[0] is not None:
            self._parsed[memo] = found
        return found

    def _read_entry(self, version: Version, *, by_version: bool) -> tuple[Entry | None, LedgerProblem | None]:
        ask = {"VersionId": version.version_id} if by_version and version.version_id not in (None, "null") else {}
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=version.key, **ask)["Body"].read()
        except errors() as exc:
            if is_error(exc, "NoSuchKey", "404"):
                return None, LedgerProblem("deleted", version.key, "it was deleted while it was read")
            if ask and is_error(exc, "AccessDenied", "403"):  # no s3:GetObjectVersion: the key is named all the same
                return None, None
            raise
        return parse(version.key, body, version.modified)


def _server_time(response: Mapping[str, Any]) -> datetime | None:
    return server_time(response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date"))


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
