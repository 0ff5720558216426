"""What a verification ran and what it saw, pure: each check's result, the verification's outcome, the error a
failure raises, and the record the ledger keeps (``history.Check``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.core.errors import DeployctlError, OperationError, UsageError
from deployctl.ledger.entry import Check

PASSED, FAILED, ERROR, NOT_RUN = "passed", "failed", "error", "not-run"
SKIPPED = "skipped"  # a verification with no check configured
LINE_LIMIT = 300


@dataclass(frozen=True)
class Subject:
    """What is verified: an app's release in an environment, running ``digest`` (the checks' placeholders)."""

    env: str
    app: str
    release: str
    namespace: str
    digest: str | None

    def placeholders(self) -> dict[str, str]:
        return {"digest": self.digest or "", "release": self.release, "namespace": self.namespace}


@dataclass(frozen=True)
class CheckResult:
    name: str
    kind: str  # helm-test | http | metric
    outcome: str  # passed | failed | error | not-run
    line: str  # what it saw: the first failing line, or what passed
    details: tuple[str, ...] = ()  # the diagnosis: a failed test's events and logs, the answers seen
    seconds: float = 0.0
    usage: bool = False  # an error that is the configuration's (exit 2); otherwise a dependency was down (exit 1)
    hint: str = ""

    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "outcome": self.outcome,
            "line": self.line,
            "details": list(self.details),
            "seconds": round(self.seconds, 2),
        }


def first_line(text: str, limit: int = LINE_LIMIT) -> str:
    """The first non-blank line of ``text``, cut to ``limit`` characters."""
    line = next((raw.strip() for raw in text.splitlines() if raw.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class Verification:
    """Every check of one app in one environment (in order; after the first that did not pass, the rest are
    ``not-run``). No check configured: ``skipped``."""

    subject: Subject
    checks: tuple[CheckResult, ...] = ()
    seconds: float = 0.0

    @property
    def outcome(self) -> str:
        if not self.checks:
            return SKIPPED
        outcomes = {c.outcome for c in self.checks}
        if ERROR in outcomes:
            return ERROR
        return FAILED if FAILED in outcomes else PASSED

    @property
    def passed(self) -> bool:
        return self.outcome in (PASSED, SKIPPED)

    @property
    def culprit(self) -> CheckResult | None:
        """The check that did not pass (the first), else None."""
        return next((c for c in self.checks if c.outcome in (FAILED, ERROR)), None)

    def record(self) -> tuple[Check, ...]:
        """The ledger's record of the checks (``Entry.checks``)."""
        return tuple(Check(c.name, c.kind, c.outcome, first_line(c.line)) for c in self.checks)

    def summary(self) -> str:
        """One line: ``passed (helm-test, http-healthz)``, ``failed: http-healthz (http): GET ... answered 500``."""
        culprit = self.culprit
        if culprit is not None:
            return f"{self.outcome}: {culprit.name} ({culprit.kind}): {first_line(culprit.line)}"
        if not self.checks:
            return "skipped (no checks configured)"
        return f"passed ({', '.join(c.name for c in self.checks)})"

    def error(self) -> DeployctlError | None:
        """What a verification that did not pass raises: exit 1 for a failed check or a dependency down, exit 2 for
        a check the configuration got wrong; the message names the check and what it saw."""
        culprit = self.culprit
        if culprit is None:
            return None
        where = f"{self.subject.app} in {self.subject.env}"
        details: dict[str, object] = {"verification": self.data()}
        if culprit.outcome == FAILED:
            message = "\n".join(
                [f"verification of {where} failed: check {culprit.name} ({culprit.kind}): {culprit.line}"]
                + [f"  {line}" for line in culprit.details]
            )
            return OperationError(message, culprit.hint or None, details=details)
        message = f"verification of {where} could not run check {culprit.name} ({culprit.kind}): {culprit.line}"
        kind = UsageError if culprit.usage else OperationError
        return kind(message, culprit.hint or None, details=details)

    def data(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "digest": self.subject.digest,
            "seconds": round(self.seconds, 2),
            "checks": [c.data() for c in self.checks],
        }

    def text(self) -> list[str]:
        if not self.checks:
            return ["  verify  skipped (no checks configured)"]
        lines = [f"  verify  {self.outcome} in {self.seconds:.1f}s"]
        lines += [f"    {c.outcome:<7} {c.name} ({c.kind}): {first_line(c.line)}" for c in self.checks]
        return lines


def not_run(names: Sequence[tuple[str, str]]) -> tuple[CheckResult, ...]:
    """The checks after one that did not pass: (name, kind) each."""
    return tuple(CheckResult(name, kind, NOT_RUN, "not run: an earlier check did not pass") for name, kind in names)


def checks_data(checks: Sequence[Check]) -> list[Mapping[str, str]]:
    """The ledger's checks for JSON output (plan, board, history)."""
    return [{"name": c.name, "kind": c.kind, "outcome": c.outcome, "line": c.line} for c in checks]


def describe(verified: str | None, checks: Sequence[Check]) -> str:
    """A ledger entry's verification for humans, beside its rollout verdict: ``checks passed (helm-test, http)``."""
    if verified is None:
        return "not verified"
    if verified == SKIPPED:
        return "no checks configured"
    culprit = next((c for c in checks if c.outcome in (FAILED, ERROR)), None)
    if culprit is not None:
        return f"checks {verified}: {culprit.name} ({culprit.kind}): {culprit.line}"
    names = ", ".join(c.name for c in checks)
    return f"checks {verified}" + (f" ({names})" if names else "")
