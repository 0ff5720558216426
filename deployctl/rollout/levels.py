"""A release's apps rolled out level by level (issue 14): apps whose ``needs`` are all rolled out go together.

Level 0 holds the apps that need none of the apps being rolled out; level n the apps whose needs are all in the
levels below n (a need that is not rolled out this time is met by what runs). The apps of a level roll out in
parallel (at most ``WORKERS`` at once), each in its own thread (``parallel.run``: an interrupt stops every one of
them): its own helm process, its own API clients and watches. A level with a failure stops the run: the next level
never starts. Results keep the configured order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from deployctl.core.errors import DeployctlError
from deployctl.rollout import parallel

T = TypeVar("T")
WORKERS = 4  # rollouts at once: each is a helm process plus a few API watches


def levels(order: Sequence[str], needs: Mapping[str, Collection[str]]) -> list[list[str]]:
    """``order`` (every app after the apps it needs, as ``config.deploy_order`` gives it) in levels, each in
    the configured order."""
    level: dict[str, int] = {}
    for name in order:
        level[name] = 1 + max((level[n] for n in needs.get(name, ()) if n in level), default=-1)
    return [[n for n in order if level[n] == i] for i in range(max(level.values(), default=-1) + 1)]


@dataclass(frozen=True)
class LevelRun(Generic[T]):
    order: tuple[str, ...]
    done: tuple[tuple[str, T], ...]  # in the configured order
    failed: tuple[tuple[str, DeployctlError], ...]  # in the configured order
    not_started: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.failed

    def error(self, runs: Callable[[T], str], *, listing: bool = True, later: str = "not started") -> DeployctlError:
        """The first failure, naming every failed app; ``listing``: and, one line each, what each app does now
        (``runs``: the line of an app that rolled out; ``later``: of one not started). Its details say each app's
        state (succeeded, failed, not started)."""
        exc = self.failed[0][1]
        exc.message += "".join(f"\nalso FAILED: {app}: {e.message.splitlines()[0]}" for app, e in self.failed[1:])
        if listing and len(self.order) > 1:
            done = dict(self.done)
            states = self.states()
            exc.message += "".join(
                f"\n{app}: " + (runs(done[app]) if app in done else "FAILED" if states[app] == "failed" else later)
                for app in self.order
            )
        exc.details = {**exc.details, "apps": self.states()}
        return exc

    def states(self) -> dict[str, str]:
        done, failed = dict(self.done), dict(self.failed)
        return {app: "succeeded" if app in done else "failed" if app in failed else "not started" for app in self.order}


def run(
    order: Sequence[str],
    needs: Mapping[str, Collection[str]],
    roll: Callable[[str], T],
    *,
    workers: int = WORKERS,
    say: Callable[[str], None] = lambda _line: None,
) -> LevelRun[T]:
    """``roll`` each app (it raises DeployctlError when its rollout fails), level by level; the apps of a level
    in parallel, every one finished before the next level starts; a level with a failure ends the run."""
    outcomes: dict[str, T | DeployctlError] = {}
    for level in levels(order, needs):
        if len(level) > 1:
            say(f"rolling out {', '.join(level)} together (their needs are met)")
        outcomes.update(zip(level, parallel.run(level, roll, workers=workers, name="rollout"), strict=True))
        if any(isinstance(outcomes[app], DeployctlError) for app in level):
            break
    done: list[tuple[str, T]] = []
    failed: list[tuple[str, DeployctlError]] = []
    for app in order:
        if app in outcomes:
            outcome = outcomes[app]
            if isinstance(outcome, DeployctlError):
                failed.append((app, outcome))
            else:
                done.append((app, outcome))
    later = tuple(app for app in order if app not in outcomes)
    return LevelRun(tuple(order), tuple(done), tuple(failed), later)
