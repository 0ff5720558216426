"""``deployctl history ENV``: what happened to an environment, newest first, from its ledger."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from deployctl.app.context import EnvContext
from deployctl.errors import UsageError
from deployctl.history import Entry, open_intents


@dataclass(frozen=True)
class HistoryResult:
    env: str
    entries: tuple[Entry, ...]
    command: str = "history"

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "entries": [e.to_dict() for e in self.entries],
            "open_intents": [e.id for e in open_intents(list(self.entries))],
        }

    def text(self) -> Sequence[str]:
        if not self.entries:
            return [f"no history for {self.env} yet"]
        unfinished = {e.id for e in open_intents(list(self.entries))}
        width = max((len(e.cluster) for e in self.entries if e.cluster), default=0)  # several clusters: a column
        column = f"{'cluster':<{max(width, 7)}} " if width else ""
        lines = [f"{'time':<24} {'action':<8} {column}{'outcome':<9} {'release':<16} {'digest':<19} {'by':<12} message"]
        for e in self.entries:
            if e.outcome == "started" and e.id not in unfinished:
                continue  # its outcome is on its own line
            if e.id in unfinished:
                e = replace(e, message="no outcome yet: in progress, or its run died (the next deploy settles it)")  # noqa: PLW2901
            digest = (e.digest or "-")[:19]
            where = f"{e.cluster or '-':<{max(width, 7)}} " if width else ""
            lines.append(
                f"{e.time[:23]:<24} {e.action:<8} {where}{e.outcome:<9} {e.release or e.tag or '-':<16} {digest:<19} "
                f"{e.actor[:12]:<12} {e.message}"
            )
            lines.extend(f"{'':<24} override {o.flag}: {o.reason}" for o in e.overrides)
        return lines


def history(ctx: EnvContext, *, limit: int | None = 20, app: str | None = None) -> HistoryResult:
    """The ledger newest first (``limit`` entries, of ``app``); an environment with several clusters says each
    entry's cluster (its ``cluster`` field)."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be at least 1, not {limit}", "pass --limit N with N >= 1")
    entries = ctx.ledger.entries(limit=None if app else limit)
    if app is not None:
        entries = [e for e in entries if e.app == app][:limit]
    return HistoryResult(ctx.name, tuple(entries))
