"""Change windows, pure: when an environment is frozen (``environments.NAME.freeze``), by which window, and until
when; ``promote``, ``deploy`` and ``apply`` are refused inside one unless overridden (``steps.freeze.require_window``).

A weekly window (``"fri 16:00 - mon 08:00"``) recurs in the freeze's time zone: wall-clock times, so it moves
with daylight saving time (a time the clocks skip or repeat that night is read so the window is the longer). A dated
window (``"2026-12-20 - 2027-01-04: year-end"``) happens once; an end given as a date alone lasts through that
day. A holiday is one whole day. When windows overlap or touch, the freeze lasts until the last of them ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from deployctl.config import Freeze

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LOOK_AHEAD = timedelta(days=14)  # how far ahead the next window is looked for
UTC_ZONE = ZoneInfo("UTC")
_MAX_CHAIN = 200  # windows chained into one freeze (a week frozen around the clock would never end)


class WindowError(ValueError):
    """A window that cannot be: it ends before it starts (the configuration's key says which)."""


@dataclass(frozen=True)
class Window:
    """One occurrence of a configured window, in absolute time."""

    key: str  # where it is configured: weekly.NAME, dated.NAME, holidays[N]
    name: str
    start: datetime  # aware
    end: datetime  # aware, exclusive
    zone: ZoneInfo
    reason: str = ""

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def describe(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        return f"{self.name!r} ({local(self.start, self.zone)} to {local(self.end, self.zone)}){why}"


@dataclass(frozen=True)
class FreezeState:
    """What the windows say at ``now``: the windows in force, when the freeze ends, the next window."""

    now: datetime
    active: tuple[Window, ...] = ()
    until: datetime | None = None  # when no window is in force any more
    upcoming: Window | None = None  # the next window to start (within LOOK_AHEAD)
    zone: ZoneInfo = UTC_ZONE

    @property
    def frozen(self) -> bool:
        return bool(self.active)

    def describe(self) -> str:
        """One line for humans (refusals, plan, status, board)."""
        if self.active:
            names = "; ".join(w.describe() for w in self.active)
            return f"frozen by {names}; ends {local(self.until, self.zone) if self.until else 'not within a year'}"
        if self.upcoming is not None:
            return f"open; next freeze {self.upcoming.describe()}"
        return "open"

    def data(self) -> dict[str, object]:
        return {
            "frozen": self.frozen,
            "windows": [
                {
                    "key": w.key,
                    "name": w.name,
                    "start": w.start.isoformat(),
                    "end": w.end.isoformat(),
                    "reason": w.reason,
                }
                for w in self.active
            ],
            "until": self.until.isoformat() if self.until else None,
            "next": {"name": self.upcoming.name, "start": self.upcoming.start.isoformat()} if self.upcoming else None,
        }


def local(moment: datetime, zone: ZoneInfo) -> str:
    """``Mon 2026-11-23 08:00 Europe/Berlin`` (the UTC time too when the zone is not UTC)."""
    here = moment.astimezone(zone)
    text = f"{DAYS[here.weekday()].capitalize()} {here:%Y-%m-%d %H:%M} {zone.key}"
    if zone.key not in ("UTC", "Etc/UTC"):
        utc = moment.astimezone(UTC)
        text += (
            f" ({utc:%H:%M} UTC)"
            if utc.date() == here.date()
            else f" ({DAYS[utc.weekday()].capitalize()} {utc:%H:%M} UTC)"
        )
    return text


def state(freeze: Freeze, now: datetime) -> FreezeState:
    """The freeze at ``now`` (an aware datetime). Raises WindowError for a window that ends before it starts."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    windows = sorted(occurrences(freeze, now - timedelta(days=8), now + LOOK_AHEAD), key=lambda w: w.start)
    active = tuple(w for w in windows if w.contains(now))
    upcoming = next((w for w in windows if w.start > now), None)
    if not active:
        return FreezeState(now, upcoming=upcoming, zone=freeze.timezone)
    until = max(w.end for w in active)
    horizon = now
    for _ in range(_MAX_CHAIN):  # a window that starts when (or before) another ends continues the freeze
        if until + timedelta(days=1) > horizon:
            horizon = until + LOOK_AHEAD
            windows = list(occurrences(freeze, now - timedelta(days=8), horizon))
        later = max((w.end for w in windows if w.start <= until < w.end), default=until)
        if later == until:
            break
        until = later
    else:
        return FreezeState(now, active, None, None, freeze.timezone)
    after = next((w for w in sorted(windows, key=lambda w: w.start) if w.start > until), None)
    return FreezeState(now, active, until, after, freeze.timezone)


def occurrences(freeze: Freeze, start: datetime, end: datetime) -> Iterator[Window]:
    """Every window of ``freeze`` that overlaps [start, end)."""
    zone = freeze.timezone
    for name, text in freeze.weekly.items():
        yield from _weekly(f"weekly.{name}", name, text, zone, start, end)
    for name, text in freeze.dated.items():
        window = dated(f"dated.{name}", name, text, zone)
        if window.start < end and window.end > start:
            yield window
    for index, day in enumerate(freeze.holidays):
        begins, ends = _at(day, time(), zone, closing=False), _at(day + timedelta(days=1), time(), zone, closing=True)
        window = Window(f"holidays[{index}]", f"holiday {day.isoformat()}", begins, ends, zone)
        if window.start < end and window.end > start:
            yield window


def dated(key: str, name: str, text: str, zone: ZoneInfo) -> Window:
    """``"2026-12-20 - 2027-01-04T08:00: reason"``: a date alone as the end lasts through that day."""
    span, _, reason = text.partition(": ")
    first, last = span.split(" - ")
    begins = _parse(first, zone, closing=False)
    if len(last) == 10:
        ends = _at(date.fromisoformat(last) + timedelta(days=1), time(), zone, closing=True)
    else:
        ends = _parse(last, zone, closing=True)
    if ends <= begins:
        raise WindowError(f"freeze.{key}: ends ({last}) before it starts ({first})")
    return Window(key, name, begins, ends, zone, reason.strip())


def _weekly(key: str, name: str, text: str, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Window]:
    """Each week's occurrence of ``"fri 16:00 - mon 08:00"`` overlapping [start, end)."""
    (first_day, first_time), (last_day, last_time) = (part.split() for part in text.split(" - "))
    opens, closes = time.fromisoformat(first_time), time.fromisoformat(last_time)
    length = (DAYS.index(last_day) - DAYS.index(first_day)) % 7
    if length == 0 and closes == opens:
        raise WindowError(f"freeze.{key}: starts and ends at the same time")
    if length == 0 and closes < opens:
        length = 7  # "mon 09:00 - mon 08:00": almost a week
    day = start.astimezone(zone).date() - timedelta(days=7)
    day -= timedelta(days=(day.weekday() - DAYS.index(first_day)) % 7)  # the first start day on or before it
    while True:
        begins = _at(day, opens, zone, closing=False)
        if begins >= end:
            return
        ends = _at(day + timedelta(days=length), closes, zone, closing=True)
        if ends > start:
            yield Window(key, name, begins, ends, zone)
        day += timedelta(days=7)


def _parse(text: str, zone: ZoneInfo, *, closing: bool) -> datetime:
    moment = datetime.fromisoformat(text)
    return _at(moment.date(), moment.time(), zone, closing=closing)


def _at(day: date, clock: time, zone: ZoneInfo, *, closing: bool) -> datetime:
    """Wall-clock ``day clock`` in ``zone`` as an aware UTC datetime. A time the clocks skip (spring forward) or
    repeat (fall back) is read so that the window is the longer one: a start as early, an end as late as it can be."""
    readings = [datetime.combine(day, clock, tzinfo=zone).replace(fold=fold).astimezone(UTC) for fold in (0, 1)]
    return max(readings) if closing else min(readings)
