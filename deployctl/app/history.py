"""``deployctl history ENV``: what happened to an environment, newest first, from its ledger.

The text is a table of one line per entry, every column cut to fit (short digests and commits, a message's first
line cut with ``…`` to the width); ``-o json`` has every entry in full.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.core.errors import UsageError
from deployctl.ledger import labels
from deployctl.ledger.audit import LedgerProblem
from deployctl.ledger.entry import Entry, open_intents

WIDTH = 160  # when the output is not a terminal: wide enough for most messages, one line still
_SHA = re.compile(r"[0-9a-f]{40}")
_CAPS = {"app": 16, "cluster": 12, "release": 20, "by": 12}  # the widest a column gets (its values are cut)
_MESSAGE = 24  # the narrowest the message gets on a narrow terminal (the line is then wider than the terminal)


def cut(text: str, width: int) -> str:
    """``text``'s first line in at most ``width`` characters: cut with ``…`` when it is longer or has more lines."""
    lines = text.strip().splitlines()
    first = lines[0].rstrip() if lines else ""
    if len(first) <= width and len(lines) <= 1:
        return first
    return first[: max(width - 1, 0)].rstrip() + "…"


def release_of(entry: Entry) -> str:
    """The release column: a promotion's release tag, a deploy's ``release@revision``, else its image tag (a commit
    sha, shortened as git does)."""
    if entry.release:
        return entry.release
    if entry.tag and _SHA.fullmatch(entry.tag):
        return entry.tag[:12]
    return entry.tag or "-"


@dataclass(frozen=True)
class HistoryResult:
    """An environment's ledger as ``deployctl history`` shows it, with the problems found reading it."""

    env: str
    entries: tuple[Entry, ...]
    command: str = "history"
    width: int = WIDTH  # the terminal's columns: the message is cut to what is left of them
    # a deleted, rewritten or corrupt entry, a writer's clock off S3's: each by its key (also said on stderr)
    problems: tuple[LedgerProblem, ...] = ()

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "entries": [e.to_dict() for e in self.entries],
            "open_intents": [e.id for e in open_intents(list(self.entries))],
            "problems": [p.data() for p in self.problems],
        }

    def text(self) -> Sequence[str]:
        if not self.entries:
            if self.problems:
                return [f"no readable entry in the history of {self.env}: {len(self.problems)} problem(s), on stderr"]
            return [f"no history for {self.env} yet"]
        unfinished = {e.id for e in open_intents(list(self.entries))}
        shown = [
            replace(e, message="no outcome yet: in progress, or its run died (the next deploy settles it)")
            if e.id in unfinished
            else e
            for e in self.entries
            if e.outcome != "started" or e.id in unfinished  # a settled intent's outcome is on its own line
        ]
        columns: list[tuple[str, list[str]]] = [
            ("time (UTC)", [e.at[:19].replace("T", " ") for e in shown]),  # S3's clock
            ("app", [e.app for e in shown]),
            ("action", [e.action for e in shown]),
        ]
        if any(e.cluster for e in shown):  # several clusters: a column
            columns.append(("cluster", [e.cluster or "-" for e in shown]))
        columns += [
            ("outcome", [e.outcome for e in shown]),
            ("release", [release_of(e) for e in shown]),
            ("digest", [(e.digest or "-")[:19] for e in shown]),  # sha256: and 12 hex digits
            ("by", [e.actor for e in shown]),
        ]
        widths = [min(max(len(name), *map(len, values)), _CAPS.get(name, 19)) for name, values in columns]
        message = max(self.width - sum(w + 1 for w in widths), _MESSAGE)
        rows = [" ".join(f"{name:<{w}}" for (name, _), w in zip(columns, widths, strict=True)) + " message"]
        for i, entry in enumerate(shown):
            cells = [f"{cut(values[i], w):<{w}}" for (_, values), w in zip(columns, widths, strict=True)]
            rows.append(" ".join(cells) + " " + cut(entry.message, message))
            indent = widths[0] + 1  # under the app column
            rows.extend(
                " " * indent + cut(f"override {o.flag}: {o.reason}", max(self.width - indent, _MESSAGE))
                for o in entry.overrides
            )
        return [row.rstrip() for row in rows]


def history(ctx: EnvContext, *, limit: int | None = 20, app: str | None = None, width: int = WIDTH) -> HistoryResult:
    """The ledger newest first by S3's clock (``limit`` entries, of ``app``) and its problems; an environment with
    several clusters says each entry's cluster (its ``cluster`` field). ``width``: the terminal's columns."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}", "pass --limit N with N >= 1")
    if app is None:
        found = ctx.read_ledger(limit=limit)
    else:  # that app's newest, fetched 8 at a time until ``limit`` are read

        def enough(newest: list[Entry]) -> bool:
            return limit is not None and sum(e.app == app for e in newest) >= limit

        found = ctx.read_ledger(question=labels.of_apps([app]), answered=enough)
    entries = found.entries
    if app is not None:
        entries = [e for e in entries if e.app == app][:limit]
    return HistoryResult(ctx.name, tuple(entries), width=width, problems=found.problems)
