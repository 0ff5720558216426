"""``history``'s table: one line per entry whatever the ledger holds, each column cut to fit; JSON keeps it all."""

from __future__ import annotations

import json

from deployctl.app.history import HistoryResult
from deployctl.ledger.entry import Entry, Override

SHA = "0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "d" * 64
TRACE = (
    "helm upgrade failed: pre-upgrade hooks failed: job api-migrate failed: BackoffLimitExceeded\n"
    "Error: UPGRADE FAILED: resource Job/api-migrate: context deadline exceeded\n"
    "  at the third line of the output"
)
FAILED = Entry(
    env="dev", app="api", action="deploy", outcome="failed", digest=DIGEST, tag=SHA, commit=SHA,
    message=TRACE, actor="a-very-long-github-actor-name", time="2026-11-29T10:00:00.123456+00:00", id="e2",
)  # fmt: skip
PROMOTED = Entry(
    env="prod", app="api", action="promote", outcome="succeeded", digest=DIGEST, tag="release-1.4.0-rc.1",
    release="release-1.4.0-rc.1-with-a-long-build-suffix", message="rolled out", actor="ci",
    overrides=(Override("--allow-downgrade", "INC-42: roll back the schema\nsecond line of the reason"),),
    time="2026-11-29T11:00:00+00:00", id="e3",
)  # fmt: skip


def table(*entries: Entry, width: int = 120) -> list[str]:
    return list(HistoryResult("dev", entries, width=width).text())


def test_a_multi_line_message_is_one_line_cut_with_an_ellipsis() -> None:
    header, row = table(FAILED, width=200)
    assert row.endswith(" helm upgrade failed: pre-upgrade hooks failed: job api-migrate failed: BackoffLimitExceeded…")
    assert "UPGRADE FAILED" not in row, "only the first line"
    assert header.split() == ["time", "(UTC)", "app", "action", "outcome", "release", "digest", "by", "message"]


def test_columns_are_short_a_deploy_shows_its_commit_as_git_does() -> None:
    _, row = table(FAILED)
    assert row.startswith("2026-11-29 10:00:00 api deploy failed  0123456789ab sha256:dddddddddddd a-very-long… helm")
    assert SHA not in row and DIGEST not in row


def test_the_message_is_cut_to_the_width_and_a_long_release_to_its_column() -> None:
    lines = table(PROMOTED, FAILED, width=130)
    assert len(lines) == 4, "a header, one line per entry and one per override"
    assert all(len(line) <= 130 for line in lines), lines
    promoted, override, failed = lines[1:]
    assert " release-1.4.0-rc.1-… " in promoted
    assert override.strip() == "override --allow-downgrade: INC-42: roll back the schema…"
    assert failed.endswith(" helm upgrade failed: pre-upgrade…")  # 34 characters left: cut at a word's end


def test_a_narrow_terminal_keeps_some_message_and_one_line_per_entry() -> None:
    lines = table(FAILED, width=40)
    assert len(lines) == 2
    assert lines[1].endswith(" a-very-long… helm upgrade failed: pr…"), "24 characters of message at least"


def test_json_keeps_every_field_in_full() -> None:
    data = json.loads(json.dumps(HistoryResult("dev", (PROMOTED, FAILED), width=40).data()))
    promoted, failed = data["entries"]
    assert failed["message"] == TRACE
    assert (failed["tag"], failed["digest"], failed["actor"]) == (SHA, DIGEST, "a-very-long-github-actor-name")
    assert promoted["release"] == "release-1.4.0-rc.1-with-a-long-build-suffix"
    assert promoted["overrides"] == [
        {"flag": "--allow-downgrade", "reason": "INC-42: roll back the schema\nsecond line of the reason"}
    ]
