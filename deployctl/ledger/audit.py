"""What the ledger's object versions say, pure: which version of each key is its entry, and what is wrong.

The ledger is append-only in fact: one object per entry, written once (``If-None-Match: *``) into a bucket whose
S3 Object Lock (COMPLIANCE, a default retention) keeps every version, and no CI role may delete there. So a key
has exactly one version, and anything else is tampering, reported by key and never skipped:

- ``deleted``: a delete marker hides the key (a plain DeleteObject). Object Lock keeps the entry itself, and the
  reader still reads it: a delete cannot erase a failure. Without Object Lock it may be gone.
- ``rewritten``: the key has several versions (a PUT without ``If-None-Match``). Its first version is the entry.
- ``corrupt``: not JSON, or not an entry this deployctl can read (another schema, fields missing).
- ``clock_skew``: the writer's ``time`` is more than ``CLOCK_BOUND`` away from S3's ``LastModified`` (its clock was
  off, e.g. dated in the future). The entry is shown, but never counted as evidence.

The first three refuse a promotion that reads this ledger as evidence (``refuses``); the last only flags the entry.
Time is S3's: ``LastModified`` orders entries and measures how long a digest ran, never the writer's clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deployctl.ledger.entry import Entry

CLOCK_BOUND = timedelta(minutes=2)  # how far a writer's clock may be from S3's before its entries are not trusted
TAMPERING = ("deleted", "rewritten", "corrupt")


@dataclass(frozen=True)
class ObjectVersion:
    """One listed version of a ledger key (``version_id`` None: listed without versions)."""

    key: str
    version_id: str | None
    modified: datetime  # S3's LastModified
    delete_marker: bool = False


@dataclass(frozen=True)
class LedgerProblem:
    kind: str  # deleted | rewritten | corrupt | clock_skew
    key: str
    detail: str
    entry: Entry | None = None  # the entry it concerns, when one could be read

    @property
    def refuses(self) -> bool:
        """Tampering or an unreadable entry: the ledger cannot be taken as evidence."""
        return self.kind in TAMPERING

    def describe(self) -> str:
        return f"{self.key}: {self.kind}: {self.detail}"

    def data(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "detail": self.detail,
            "entry": self.entry.id if self.entry else None,
        }


@dataclass(frozen=True)
class LedgerRead:
    """What a read of one environment's ledger found: its entries newest first (by S3's clock) and every problem."""

    entries: list[Entry]
    problems: tuple[LedgerProblem, ...] = ()
    read_at: datetime | None = None  # S3's clock when the ledger was listed (its Date header)
    skipped: tuple[str, ...] = ()  # why the read could not check everything (a missing permission)

    @property
    def now(self) -> datetime:
        """S3's clock at the read (this machine's when S3 sent no Date): the entries' times are S3's too."""
        return self.read_at or datetime.now(UTC)

    @property
    def tampering(self) -> tuple[LedgerProblem, ...]:
        return tuple(p for p in self.problems if p.refuses)

    def not_counted(self, app: str, digest: str | None) -> tuple[str, ...]:
        """The healthy rollouts of ``app``'s ``digest`` not counted as proof (their writer's clock was off S3's)."""
        return tuple(
            p.describe()
            for p in self.problems
            if p.kind == "clock_skew"
            and p.entry
            and (p.entry.app, p.entry.digest, p.entry.outcome) == (app, digest, "succeeded")
        )


def audit(versions: Iterable[ObjectVersion]) -> tuple[list[ObjectVersion], list[LedgerProblem]]:
    """The version that is each key's entry (its first), newest first by S3's clock, and the tampering seen."""
    by_key: dict[str, list[ObjectVersion]] = {}
    for version in versions:  # S3 lists the versions of a key newest first
        by_key.setdefault(version.key, []).append(version)
    chosen: list[ObjectVersion] = []
    problems: list[LedgerProblem] = []
    for key, found in by_key.items():
        found.sort(key=lambda v: v.modified, reverse=True)  # stable: equal seconds keep S3's order
        objects = [v for v in found if not v.delete_marker]
        markers = [v for v in found if v.delete_marker]
        if markers:
            kept = "the entry is retained and still read" if objects else "the entry is gone (no Object Lock kept it)"
            problems.append(
                LedgerProblem(
                    "deleted", key, f"a delete marker hides it (deleted at {iso(markers[0].modified)}); {kept}"
                )
            )
        if len(objects) > 1:
            when = ", ".join(iso(v.modified) for v in objects[:-1])
            detail = f"{len(objects)} versions: written again at {when}; its first version is read"
            problems.append(LedgerProblem("rewritten", key, detail))
        if objects:
            chosen.append(objects[-1])
    chosen.sort(key=lambda v: (v.modified, v.key), reverse=True)
    return chosen, problems


def skew_problem(key: str, entry: Entry) -> LedgerProblem | None:
    """A ``clock_skew`` problem when ``entry``'s writer clock was more than ``CLOCK_BOUND`` off S3's."""
    skew = entry.skew
    if skew is None or abs(skew) <= CLOCK_BOUND:
        return None
    side = "ahead of" if skew > timedelta() else "behind"
    detail = (
        f"its writer dated it {entry.time}, {_span(abs(skew))} {side} S3's clock ({entry.recorded_at}): "
        "never counted as evidence"
    )
    return LedgerProblem("clock_skew", key, detail, entry)


def server_time(date_header: str | None) -> datetime | None:
    """S3's clock from a response's ``Date`` header (whole seconds; None: no usable header)."""
    if not date_header:
        return None
    try:
        server = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return None
    return server if server.tzinfo is not None else server.replace(tzinfo=UTC)


def clock_offset(date_header: str | None, sent: datetime, received: datetime) -> timedelta | None:
    """How far this machine's clock is ahead of S3's, from the ``Date`` header of a request sent and answered at
    these local times (the middle of the request is taken). None: no header."""
    server = server_time(date_header)
    return None if server is None else sent + (received - sent) / 2 - server


def iso(moment: datetime) -> str:
    """A time as the ledger writes its own: UTC, ISO 8601 with microseconds."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def _span(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"
