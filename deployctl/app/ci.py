"""``deployctl ci steps``: what the pipeline runs for an event and ref; ``ci release-tag``: the version-bump route."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from deployctl import git
from deployctl.config import LoadedConfig
from deployctl.errors import PolicyError, UsageError
from deployctl.model import InvalidValueError
from deployctl.pipeline import Pipeline, project_version, roles, steps_for, version_bump
from deployctl.runner import Runner


@dataclass(frozen=True)
class CiStepsResult:
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
            "steps": [asdict(step) for step in p.steps],
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


def ci_steps(config: LoadedConfig, event: str, ref: str) -> CiStepsResult:
    try:
        return CiStepsResult(steps_for(config.settings, event, ref))
    except InvalidValueError as exc:
        raise UsageError(str(exc), "events: pull_request, push, workflow_dispatch; refs like refs/heads/main") from None


@dataclass(frozen=True)
class ReleaseTagResult:
    version: str
    release: str | None
    reason: str
    pushed: bool
    command: str = "ci release-tag"

    def data(self) -> Mapping[str, Any]:
        return {"version": self.version, "release": self.release, "reason": self.reason, "pushed": self.pushed}

    def text(self) -> Sequence[str]:
        done = f": tagged and pushed {self.release}" if self.pushed else ""
        return [f"version {self.version}: {self.reason}{done}"]


def release_tag(config: LoadedConfig, runner: Runner, *, push: bool) -> ReleaseTagResult:
    """The version-bump release route: a new ``project.version`` on main becomes the release tag (created and
    pushed with ``push``; then the tag's own pipeline promotes it). Nothing to release is success (exit 0)."""
    root = config.root
    try:
        version = project_version((root / "pyproject.toml").read_text(encoding="utf-8"))
        target = config.settings.environments[roles(config.settings).prod]
        prefix = target.release_tag_pattern.split("<semver>", 1)[0]
        bump = version_bump(config.settings, version, git.tags(runner, root, prefix))
    except InvalidValueError as exc:
        raise UsageError(str(exc), "set project.version to a semantic version (poetry version minor)") from None
    except OSError as exc:
        raise UsageError(f"cannot read {root / 'pyproject.toml'}: {exc.strerror}", "run from the repository") from None
    if bump.tag is None or not push:
        return ReleaseTagResult(bump.version, bump.tag, bump.reason, pushed=False)
    head = git.head(runner, root)
    main_ref = git.main_ref(runner, root, config.settings.main_branch)
    if not git.is_ancestor(runner, root, head, main_ref):
        raise PolicyError(
            f"{head[:12]} is not on {main_ref}: only a commit of main is released",
            f"merge to {config.settings.main_branch}; the version bump is tagged from there",
        )
    git.create_tag(runner, root, bump.tag, head, f"{bump.tag}: version {version}")
    git.push_tag(runner, root, bump.tag)
    return ReleaseTagResult(bump.version, bump.tag, bump.reason, pushed=True)
