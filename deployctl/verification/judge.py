"""The checks' judgements, pure (table-tested in tests/unit/test_verification.py): placeholders, an HTTP answer
against what a check expects, a condition on a number, and a Prometheus query result read into its values."""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from deployctl.verification.model import first_line

_PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_]+)\s*}}")
_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")
BODY_SHOWN = 120


def render(text: str, values: Mapping[str, str]) -> str:
    """``{{digest}}``, ``{{release}}``, ``{{namespace}}`` replaced (the configuration rejects any other)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)


@dataclass(frozen=True)
class Answer:
    """What an HTTP request got: its status and (the start of) its body; ``status`` 0: no answer (``error`` says).
    ``served`` False: the API server answered itself that the Service has no endpoint to proxy to yet (the
    Endpoints follow the pods' readiness a moment later): not the release's answer."""

    status: int
    body: str = ""
    error: str = ""
    served: bool = True


def answer_problem(answer: Answer, expect_status: int, body_contains: str | None) -> str | None:
    """Why ``answer`` is not what a check expects (one line), None when it is."""
    if answer.status == 0:
        return f"no answer: {answer.error}"
    shown = first_line(answer.body, BODY_SHOWN)
    if answer.status != expect_status:
        return f"answered {answer.status}, expected {expect_status}" + (f": {shown}" if shown else "")
    if body_contains is not None and body_contains not in answer.body:
        return f"answered {answer.status} without {body_contains!r} in its body" + (f": {shown}" if shown else "")
    return None


@dataclass(frozen=True)
class MetricCondition:
    """A metric check's condition: a comparison and its bound (``< 0.01``)."""

    op: str
    bound: float

    @classmethod
    def parse(cls, text: str) -> MetricCondition:
        match = _CONDITION.match(text)
        if match is None or match.group(1) not in _OPERATORS:
            raise ValueError(f"not a condition: {text!r} (an operator and a number: '< 0.01')")
        return cls(match.group(1), float(match.group(2)))

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and _OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


class QueryResultError(ValueError):
    """A query answer deployctl cannot judge (a range vector, a string): the configuration's to fix."""


def values_of(data: Mapping[str, Any]) -> list[tuple[str, float]]:
    """Each series' labels (``{code="500"}``, or "" for none) and value from the ``data`` of a successful
    ``/api/v1/query`` answer: an instant vector (every sample) or a scalar."""
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "scalar" and isinstance(result, list) and len(result) == 2:
        return [("", _number(result[1]))]
    if kind == "vector" and isinstance(result, list):
        return [
            (_labels(sample.get("metric") or {}), _number((sample.get("value") or [0, "NaN"])[1])) for sample in result
        ]
    raise QueryResultError(f"the query returns a {kind}: it must return an instant vector or a scalar")


def _number(text: Any) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _labels(metric: Mapping[str, Any]) -> str:
    shown = {k: v for k, v in metric.items() if k != "__name__"}
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}" if shown else ""


def evaluation_problem(values: list[tuple[str, float]], condition: MetricCondition) -> str | None:
    """Why one evaluation fails (``no data``, or the first value outside the condition), None when it passes."""
    if not values:
        return "no data (the query returned no series)"
    for labels, value in values:
        if not condition.holds(value):
            return f"{labels + ' ' if labels else ''}{value:g} is not {condition}"
    return None
