"""An app's models: its chart, release, image, and how the image reaches the chart's values."""

# Mutable defaults ({}, []) are safe: pydantic copies them per instance; ruff cannot see that Strict is a
# pydantic model when it comes from another module.
# ruff: noqa: RUF012

from __future__ import annotations

import re

from pydantic import Field, model_validator

from deployctl.config.base import Name, Strict
from deployctl.config.verify import Verify


class Image(Strict):
    registry: str = Field(pattern=r"^[a-z0-9.-]+(:\d+)?$")
    repository: str = Field(pattern=r"^[a-z0-9]+([._/-][a-z0-9]+)*$")

    @property
    def ref(self) -> str:
        return f"{self.registry}/{self.repository}"


# How an app's image reaches its chart's values: chart value key (dotted) -> template. The placeholders are
# the image's parts; a key whose placeholders are not all known for an image (no tag, no commit) is left out.
IMAGE_PLACEHOLDERS = ("registry", "repository", "digest", "tag", "git_sha")
DEFAULT_IMAGE_VALUES = {
    "image.repository": "{registry}/{repository}",
    "image.digest": "{digest}",
    "image.tag": "{tag}",
    "build.gitSha": "{git_sha}",
}
_PLACEHOLDER = re.compile(r"{([^{}]*)}")
_VALUE_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


class App(Strict):
    # A local chart directory, or an OCI chart reference (oci://REGISTRY/PATH) pulled by helm at chart_version.
    chart: str = Field(min_length=1)
    chart_version: str | None = Field(default=None, pattern=r"^[0-9A-Za-z.+-]+$")
    release: Name
    image: Image
    image_values: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMAGE_VALUES))
    # Apps deployed before this one (promote and deploy roll out in this order).
    needs: list[Name] = []
    # A commit may not rebuild this app: then it keeps the digest it runs (the plan says so).
    optional: bool = False
    # Checks run after every healthy rollout (helm test, HTTP, metrics), with per-environment overrides.
    verify: Verify = Verify()

    @model_validator(mode="after")
    def _chart_and_mapping(self) -> App:
        if self.chart.startswith("oci://") and self.chart_version is None:
            raise ValueError("an OCI chart (chart = 'oci://...') needs chart_version (a pinned version)")
        problems = []
        for key, template in self.image_values.items():
            if not _VALUE_KEY.match(key):
                problems.append(f"image_values.{key}: not a dotted values key (e.g. image.digest)")
            unknown = [p for p in _PLACEHOLDER.findall(template) if p not in IMAGE_PLACEHOLDERS]
            if unknown:
                problems.append(
                    f"image_values.{key}: unknown placeholder {{{unknown[0]}}} (known: "
                    + ", ".join(f"{{{p}}}" for p in IMAGE_PLACEHOLDERS)
                    + ")"
                )
        if not any("{digest}" in t for t in self.image_values.values()):
            problems.append("image_values: no key takes {digest}: the image could not be pinned by digest")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def local_chart(self) -> bool:
        return not self.chart.startswith("oci://")
