"""A ledger entry, pure: what happened to an environment (its fields, its JSON and how it is read back), and
which intents are still open."""

from __future__ import annotations

import getpass
import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from deployctl.ledger.audit import (
    CLOCK_BOUND,
    LedgerProblem,
    iso,
)
from deployctl.ledger.lock_record import ci_run_id

ENTRY_SCHEMA = "deployctl/history/v1"
Outcome = Literal["started", "succeeded", "failed", "unknown", "interrupted", "moved", "unchanged"]


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
    # unchanged: a deploy of what already ran (no helm revision), judged as it was (verdict healthy | failed).
    # An entry made before its outcome is known (a template ``written_now`` completes) is its intent: started.
    outcome: Outcome
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
