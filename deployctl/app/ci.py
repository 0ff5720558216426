"""``deployctl ci release-tag``: the version-bump route (``ci steps`` is ``app/routing.py``: no pydantic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.adapters import git
from deployctl.config import LoadedConfig
from deployctl.core.errors import PolicyError, UsageError
from deployctl.core.refs import InvalidValueError
from deployctl.release.pipeline import project_version, roles, version_bump
from deployctl.runner import Runner


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
