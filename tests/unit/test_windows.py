"""Change windows (deployctl/release/windows.py and the freeze keys of config.py), table-tested: weekly windows in a
time zone (across daylight saving time), dated ranges, holidays, chained freezes, and the configuration's
refusals."""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from deployctl.config import ConfigProblemsError, Freeze, load
from deployctl.release import windows

BERLIN = {"timezone": "Europe/Berlin", "weekly": {"weekend": "fri 16:00 - mon 08:00"}}
NEW_YORK = {"timezone": "America/New_York", "weekly": {"nightly": "tue 22:00 - wed 02:00"}}
DATED = {"dated": {"launch": "2026-12-01T18:00 - 2026-12-03: launch of v2"}}
HOLIDAYS = {"timezone": "Europe/Berlin", "holidays": ["2026-12-24", "2026-12-25"]}
CHAINED = {
    "timezone": "Europe/Berlin",
    "weekly": {"weekend": "fri 16:00 - mon 08:00"},
    "dated": {"launch": "2026-11-23 - 2026-11-24: v2 launch"},
}
# 2026-03-29 02:00 CET the clocks jump to 03:00 CEST; 2026-10-25 03:00 CEST they fall back to 02:00 CET.
DST = {"timezone": "Europe/Berlin", "weekly": {"sunday-night": "sun 02:30 - sun 04:00"}}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("freeze", "now", "frozen", "names", "until"),
    [
        # weekly, in the freeze's time zone (Berlin is UTC+1 in November)
        (BERLIN, "2026-11-20T14:59:59+00:00", False, [], None),  # Fri 15:59 Berlin
        (BERLIN, "2026-11-20T15:00:00+00:00", True, ["weekend"], "2026-11-23T07:00:00+00:00"),  # Fri 16:00 sharp
        (BERLIN, "2026-11-22T23:30:00+00:00", True, ["weekend"], "2026-11-23T07:00:00+00:00"),  # Mon 00:30 Berlin
        (BERLIN, "2026-11-23T07:00:00+00:00", False, [], None),  # Mon 08:00: the end is exclusive
        (BERLIN, "2026-11-25T12:00:00+00:00", False, [], None),  # midweek
        # summer time: the same wall clock is an hour earlier in UTC
        (BERLIN, "2026-07-03T14:00:00+00:00", True, ["weekend"], "2026-07-06T06:00:00+00:00"),
        (BERLIN, "2026-07-03T13:59:00+00:00", False, [], None),
        # a window across midnight, in a zone west of UTC (Tue 22:00 EST = Wed 03:00 UTC)
        (NEW_YORK, "2026-11-18T03:00:00+00:00", True, ["nightly"], "2026-11-18T07:00:00+00:00"),
        (NEW_YORK, "2026-11-17T22:00:00+00:00", False, [], None),  # Tue 17:00 in New York
        # dated: from a time, to the end of a day (UTC, the default zone)
        (DATED, "2026-12-01T17:59:00+00:00", False, [], None),
        (DATED, "2026-12-01T18:00:00+00:00", True, ["launch"], "2026-12-04T00:00:00+00:00"),
        (DATED, "2026-12-03T23:59:00+00:00", True, ["launch"], "2026-12-04T00:00:00+00:00"),
        (DATED, "2026-12-04T00:00:00+00:00", False, [], None),
        # holidays: whole days in the zone, consecutive ones chain
        (HOLIDAYS, "2026-12-23T22:59:00+00:00", False, [], None),
        (HOLIDAYS, "2026-12-23T23:00:00+00:00", True, ["holiday 2026-12-24"], "2026-12-25T23:00:00+00:00"),
        # the weekend runs into the launch days: frozen until the launch ends (Wed 00:00 Berlin)
        (CHAINED, "2026-11-21T12:00:00+00:00", True, ["weekend"], "2026-11-24T23:00:00+00:00"),
        (CHAINED, "2026-11-23T12:00:00+00:00", True, ["launch"], "2026-11-24T23:00:00+00:00"),
        # daylight saving time: a start the clocks skip (02:30) is read in summer time, 01:30 CET (the longer
        # window: a freeze errs on the side of being in force) ...
        (DST, "2026-03-29T00:29:00+00:00", False, [], None),
        (DST, "2026-03-29T00:30:00+00:00", True, ["sunday-night"], "2026-03-29T02:00:00+00:00"),
        # ... and a start the clocks repeat (02:30 twice) is its first occurrence, in summer time
        (DST, "2026-10-25T00:29:00+00:00", False, [], None),
        (DST, "2026-10-25T00:30:00+00:00", True, ["sunday-night"], "2026-10-25T03:00:00+00:00"),
    ],
)
def test_freeze_state(freeze: dict[str, Any], now: str, frozen: bool, names: list[str], until: str | None) -> None:
    found = windows.state(Freeze.model_validate(freeze), at(now))
    assert found.frozen is frozen
    assert [w.name for w in found.active] == names
    assert found.until == (at(until) if until else None)


def test_an_open_environment_names_the_next_window() -> None:
    found = windows.state(Freeze.model_validate(BERLIN), at("2026-11-18T12:00:00+00:00"))
    assert found.upcoming is not None and found.upcoming.start == at("2026-11-20T15:00:00+00:00")
    assert found.describe() == (
        "open; next freeze 'weekend' (Fri 2026-11-20 16:00 Europe/Berlin (15:00 UTC) to "
        "Mon 2026-11-23 08:00 Europe/Berlin (07:00 UTC))"
    )
    assert windows.state(Freeze(), at("2026-11-18T12:00:00+00:00")).describe() == "open"


def test_a_freeze_says_which_window_why_and_when_it_ends() -> None:
    found = windows.state(Freeze.model_validate(CHAINED), at("2026-11-23T12:00:00+00:00"))
    assert found.describe() == (
        "frozen by 'launch' (Mon 2026-11-23 00:00 Europe/Berlin (Sun 23:00 UTC) to Wed 2026-11-25 00:00 "
        "Europe/Berlin (Tue 23:00 UTC)): v2 launch; ends Wed 2026-11-25 00:00 Europe/Berlin (Tue 23:00 UTC)"
    )
    data = found.data()
    assert data["frozen"] is True
    assert data["until"] == "2026-11-24T23:00:00+00:00"
    assert data["windows"] == [
        {
            "key": "dated.launch",
            "name": "launch",
            "start": "2026-11-22T23:00:00+00:00",
            "end": "2026-11-24T23:00:00+00:00",
            "reason": "v2 launch",
        }
    ]


def test_a_freeze_around_the_clock_never_ends_within_the_horizon() -> None:
    always = Freeze.model_validate({"weekly": {"always": "mon 00:00 - sun 23:59", "gap": "sun 23:30 - mon 00:30"}})
    found = windows.state(always, at("2026-11-18T12:00:00+00:00"))
    assert found.frozen and found.until is None
    assert found.describe().endswith("ends not within a year")


@pytest.mark.parametrize(
    ("freeze", "message"),
    [
        ({"dated": {"oops": "2026-12-03 - 2026-12-01: backwards"}}, "freeze.dated.oops: ends (2026-12-01) before"),
        ({"dated": {"same": "2026-12-03T10:00 - 2026-12-03T10:00: empty"}}, "freeze.dated.same: ends"),
        ({"weekly": {"none": "fri 16:00 - fri 16:00"}}, "freeze.weekly.none: starts and ends at the same time"),
    ],
)
def test_impossible_windows_are_refused(freeze: dict[str, Any], message: str) -> None:
    with pytest.raises(windows.WindowError, match=message.replace("(", r"\(").replace(")", r"\)")):
        windows.state(Freeze.model_validate(freeze), at("2026-11-18T12:00:00+00:00"))


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        windows.state(Freeze(), datetime(2026, 11, 18))  # naive: the point of the test


CONFIG = """
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = {{ registry = "r.example", repository = "api" }}

[tool.deployctl.environments.prod]
aws = {{ region = "us-east-1" }}
cluster = {{ kubeconfig = "k" }}
namespace = "api"
values = "values-prod.yaml"
{extra}
"""


def problems(tmp_path: Path, extra: str) -> list[str]:
    path = tmp_path / "pyproject.toml"
    path.write_text(textwrap.dedent(CONFIG.format(extra=extra)), encoding="utf-8")
    with pytest.raises(ConfigProblemsError) as caught:
        load(path)
    return caught.value.problems


def test_freeze_and_notify_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    extra = """
    freeze = { timezone = "Europe/Berlin", weekly = { weekend = "fri 16:00 - mon 08:00" }, holidays = [2026-12-25] }
    notify = [{ url_env = "SLACK_PROD", format = "slack", events = ["promote-failed"] }, { url_env = "HOOK" }]
    """
    path.write_text(textwrap.dedent(CONFIG.format(extra=extra)), encoding="utf-8")
    env = load(path).settings.environments["prod"]
    assert env.freeze.timezone.key == "Europe/Berlin"
    assert env.freeze.holidays[0].isoformat() == "2026-12-25"
    assert env.notify[0].events == ["promote-failed"]
    assert env.notify[1].format == "json" and env.notify[1].events is None  # every event
    assert env.model_dump(mode="json")["freeze"]["timezone"] == "Europe/Berlin"  # config show


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('freeze = { timezone = "Mars/Olympus" }', "environments.prod.freeze.timezone: invalid timezone: Mars/Olympus"),
        ('freeze = { weekly = { w = "friday 16:00 - mon 08:00" } }', "environments.prod.freeze.weekly.w: 'friday"),
        ('freeze = { weekly = { w = "fri 25:00 - mon 08:00" } }', "environments.prod.freeze.weekly.w: 'fri 25:00"),
        ('freeze = { dated = { d = "2026-12-01 - 2026-12-02" } }', "environments.prod.freeze.dated.d: '2026-12-01"),
        ("freeze = { windows = [] }", "environments.prod.freeze.windows: unknown key"),
        ('notify = [{ url_env = "A", events = ["deployed"] }]', "environments.prod.notify.0.events.0: Input should be"),
        ('notify = [{ url_env = "https://hooks.example/x" }]', "environments.prod.notify.0.url_env: 'https://"),
        ('notify = [{ url_env = "A", format = "teams" }]', "environments.prod.notify.0.format: Input should be"),
    ],
)
def test_bad_freeze_and_notify_keys_are_refused_with_the_key(tmp_path: Path, extra: str, expected: str) -> None:
    found = problems(tmp_path, extra)
    assert len(found) == 1
    assert f"tool.deployctl.{expected}" in found[0], found


def test_diff_shows_the_freeze_a_deploy_would_meet() -> None:
    from deployctl.release.drift import DiffResult

    frozen = windows.state(Freeze.model_validate(CHAINED), at("2026-11-23T12:00:00+00:00"))
    shown = DiffResult("prod", (), freeze=frozen)
    assert shown.data()["freeze"] == frozen.data()
    assert shown.text() == [f"prod: {frozen.describe()}"]
    opened = DiffResult("prod", (), freeze=windows.state(Freeze(), at("2026-11-23T12:00:00+00:00")))
    assert opened.data()["freeze"]["frozen"] is False
    assert opened.text() == [], "an open environment adds no line"
