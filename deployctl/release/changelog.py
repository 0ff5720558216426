"""What is in a release, pure: the commits between the one the target runs and the release commit,
with their pull request numbers, and which of them had an image that failed in the source."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.ledger.entry import Entry
from deployctl.promotion.evidence import failed, run_of

# "Merge pull request #12 from ..." (merge commits) and "Subject (#12)" (squash merges)
PR_RES = (re.compile(r"^Merge pull request #(\d+)\b"), re.compile(r"\(#(\d+)\)\s*$"))
LIMIT = 50


@dataclass(frozen=True)
class Change:
    sha: str
    author: str
    subject: str
    pr: int | None
    failed_in_source: str | None  # when and by which run its image failed in the source environment

    def data(self) -> dict[str, Any]:
        return {
            "sha": self.sha,
            "author": self.author,
            "subject": self.subject,
            "pr": self.pr,
            "failed_in_source": self.failed_in_source,
        }


@dataclass(frozen=True)
class Changelog:
    base: str | None  # the commit the target runs (None: its first promotion)
    head: str
    changes: tuple[Change, ...]
    total: int  # commits in the range (``changes`` holds at most LIMIT of them)

    @property
    def warnings(self) -> list[str]:
        return [
            f"commit {c.sha[:12]} ({c.subject}) is in this release and its image failed in the source: "
            f"{c.failed_in_source}"
            for c in self.changes
            if c.failed_in_source
        ]

    def data(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "total": self.total,
            "commits": [c.data() for c in self.changes],
            "warnings": self.warnings,
        }

    def text(self) -> list[str]:
        span = f"{self.base[:12]}..{self.head[:12]}" if self.base else f"up to {self.head[:12]} (first promotion)"
        shown = "" if self.total <= len(self.changes) else f", newest {len(self.changes)} shown"
        lines = [f"  changes  {self.total} commit(s) {span}{shown}"]
        for c in self.changes:
            pr = f" (PR #{c.pr})" if c.pr else ""
            mark = "  !! its image failed in the source" if c.failed_in_source else ""
            lines.append(f"    {c.sha[:12]} {c.subject}{pr} - {c.author}{mark}")
        return lines


def pr_number(subject: str) -> int | None:
    for pattern in PR_RES:
        match = pattern.search(subject)
        if match:
            return int(match.group(1))
    return None


def changelog(
    commits: Sequence[tuple[str, str, str]],
    total: int,
    *,
    base: str | None,
    head: str,
    source_entries: Sequence[Entry],
    app: str,
) -> Changelog:
    """The changelog of ``commits`` (``(sha, author, subject)``, newest first), each checked against the
    source environment's ledger for a failed rollout of the image built from it."""
    failures: dict[str, Entry] = {}
    for entry in sorted(source_entries, key=lambda e: e.order):
        if entry.app == app and entry.commit and failed(entry):
            failures.setdefault(entry.commit, entry)
    changes = []
    for sha, author, subject in commits:
        failure = failures.get(sha)
        where = f"{failure.at} by {run_of(failure)}" if failure else None
        changes.append(Change(sha, author, subject, pr_number(subject), where))
    return Changelog(base, head, tuple(changes), total)
