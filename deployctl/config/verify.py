"""Verification's models: the checks run after every healthy rollout (``apps.NAME.verify``, with per-environment
overrides), and where an environment's metrics are queried (``environments.NAME.metrics``).

Three kinds, each bounded in time and with a tolerance: the chart's own ``helm test`` hooks, HTTP checks made
through the API server's service proxy (or against a URL), and metric queries against a Prometheus-compatible API.
"""

# Mutable defaults ({}, []) are safe: pydantic copies them per instance; ruff cannot see that Strict is a
# pydantic model when it comes from another module.
# ruff: noqa: RUF012

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from deployctl.config.base import Name, Strict

CHECK_PLACEHOLDERS = ("digest", "release", "namespace")
_PLACEHOLDER = re.compile(r"{{\s*([A-Za-z_]+)\s*}}")
# A condition on every value a query returns: an operator and a number (``< 0.01``, ``>= 0.95``).
CONDITION = r"^\s*(<=|>=|==|!=|<|>)\s*-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?\s*$"


def _placeholders(text: str, where: str) -> list[str]:
    unknown = [p for p in _PLACEHOLDER.findall(text) if p not in CHECK_PLACEHOLDERS]
    known = ", ".join(f"{{{{{p}}}}}" for p in CHECK_PLACEHOLDERS)
    return [f"{where}: unknown placeholder {{{{{unknown[0]}}}}} (known: {known})"] if unknown else []


class HelmTest(Strict):
    """Run the chart's ``helm.sh/hook: test`` hooks (``helm test RELEASE``) after the rollout."""

    enabled: bool = True
    timeout_seconds: int = Field(default=300, ge=1, le=3600)
    retries: int = Field(default=0, ge=0, le=5)  # runs of ``helm test`` after a failed one


class HttpCheck(Strict):
    """A request through the API server's service proxy to ``service:port`` (or to ``url``, e.g. the Ingress'),
    passed after ``successes`` consecutive answers with ``expect_status`` (and ``body_contains``); it fails at the
    ``failure_limit + 1``-th failed answer, or when ``timeout_seconds`` have passed."""

    name: Name | None = None  # default: "http-" and the path's first segment
    service: str | None = Field(default=None, pattern=r"^[a-z0-9{}. _-]+$")  # default: "{{release}}"
    port: str | int = "http"  # the Service's port, by name or number
    url: str | None = Field(default=None, pattern=r"^https?://")
    path: str = Field(default="/", pattern=r"^/")
    method: Literal["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"] = "GET"
    expect_status: int = Field(default=200, ge=100, le=599)
    body_contains: str | None = None
    successes: int = Field(default=3, ge=1, le=100)
    interval_seconds: float = Field(default=2, ge=0, le=600)
    failure_limit: int = Field(default=0, ge=0, le=100)
    timeout_seconds: int = Field(default=60, ge=1, le=3600)

    @model_validator(mode="after")
    def _target(self) -> HttpCheck:
        if self.url is not None and self.service is not None:
            raise ValueError("set 'service' (through the API server) or 'url', not both")
        problems = _placeholders(self.service or "", "service") + _placeholders(self.path, "path")
        problems += _placeholders(self.url or "", "url")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        segment = self.path.strip("/").split("/", 1)[0].split("?", 1)[0]
        return "http-" + (re.sub(r"[^a-z0-9-]", "-", segment.lower()) or "root")


class MetricCheck(Strict):
    """A PromQL query evaluated ``count`` times, ``interval_seconds`` apart; each value it returns must meet
    ``condition``. More than ``failure_limit`` failed evaluations (a value outside the condition, or no value)
    fail the check. ``{{digest}}``, ``{{release}}`` and ``{{namespace}}`` are replaced in the query."""

    name: Name
    query: str = Field(min_length=1)
    condition: str = Field(pattern=CONDITION)
    count: int = Field(default=3, ge=1, le=1000)
    interval_seconds: float = Field(default=30, ge=0, le=3600)
    failure_limit: int = Field(default=0, ge=0, le=1000)
    timeout_seconds: int = Field(default=10, ge=1, le=300)  # one query

    @model_validator(mode="after")
    def _query(self) -> MetricCheck:
        problems = _placeholders(self.query, "query")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class Checks(Strict):
    """What an environment overrides (``apps.NAME.verify.environments.ENV``): a key given replaces the app's."""

    helm_test: HelmTest | None = None
    http: list[HttpCheck] | None = None
    metrics: list[MetricCheck] | None = None


class Verify(Strict):
    """``apps.NAME.verify``: the checks every environment runs, and what each environment changes."""

    helm_test: HelmTest | None = None
    http: list[HttpCheck] = []
    metrics: list[MetricCheck] = []
    environments: dict[Name, Checks] = {}

    @model_validator(mode="after")
    def _unique(self) -> Verify:
        found: list[tuple[str, list[HttpCheck] | None, list[MetricCheck] | None]] = [("", self.http, self.metrics)]
        found += [(f"environments.{n}.", c.http, c.metrics) for n, c in self.environments.items()]
        for where, https, metrics in found:
            names = [c.label for c in https or ()] + [m.name for m in metrics or ()]
            twice = sorted({n for n in names if names.count(n) > 1})
            if twice:
                raise ValueError(f"{where}check name {twice[0]!r} is used twice: name each check (name = ...)")
        return self

    def resolved(self, env: str) -> Checks:
        """The checks ``env`` runs: the app's, with what ``environments.ENV`` overrides."""
        over = self.environments.get(env, Checks())
        return Checks(
            helm_test=over.helm_test if over.helm_test is not None else self.helm_test,
            http=over.http if over.http is not None else list(self.http),
            metrics=over.metrics if over.metrics is not None else list(self.metrics),
        )


class Metrics(Strict):
    """``environments.NAME.metrics``: a Prometheus-compatible HTTP API (``/api/v1/query``) and, optionally, the
    environment variable holding its bearer token (a secret: never printed)."""

    url: str = Field(pattern=r"^https?://")
    token_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
