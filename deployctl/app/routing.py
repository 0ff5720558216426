"""``deployctl ci steps``: what the pipeline runs for an event and ref.

It reads the configuration's routing keys only (``config.routing``, or the validated settings when those are
not in their plain form), so the first job of every pipeline does not pay for pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from deployctl.core.errors import InvalidValueError, UsageError
from deployctl.release.pipeline import Pipeline, RouteConfig, steps_for


class CiStepsResult(NamedTuple):  # not a dataclass: see config.routing
    pipeline: Pipeline
    command: str = "ci steps"

    def data(self) -> Mapping[str, Any]:
        p = self.pipeline
        return {
            "event": p.event,
            "ref": p.ref,
            "kind": p.kind,
            "reason": p.reason,
            "release": p.release,
            "environments": list(p.environments),
            "steps": [step._asdict() for step in p.steps],
        }

    def text(self) -> Sequence[str]:
        p = self.pipeline
        lines = [f"{p.event} {p.ref}: {p.kind} ({p.reason})"]
        if not p.steps:
            lines.append("  no steps")
        for step in p.steps:
            after = f"  (after {', '.join(step.needs)})" if step.needs else ""
            lines.append(f"  {step.id:<14} {step.run}{after}")
        return lines


def ci_steps(config: RouteConfig, event: str, ref: str) -> CiStepsResult:
    try:
        return CiStepsResult(steps_for(config, event, ref))
    except InvalidValueError as exc:
        raise UsageError(str(exc), "events: pull_request, push, workflow_dispatch; refs like refs/heads/main") from None
