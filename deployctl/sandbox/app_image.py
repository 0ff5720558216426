"""``deployctl sandbox image APP``: a repository's own image of a commit in the sandbox, where ``deploy`` finds it.

``deploy ENV`` resolves each app's ``image.repository`` at the tag of the commit (its full 40-character sha:
CI tags each build with the commit it was built from) in the app's image registry, which the sandbox's
overlay points at ``registry-0`` (``Lab.config_overrides``). This pushes there, under that tag, a small
runnable image of the app (``runnable_image``) and, with a behaviour, marks its digest in the sandbox (as
``sandbox mark`` does) so its pods fail that way: a broken build, without docker.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.adapters import git
from deployctl.config import LoadedConfig
from deployctl.core.errors import DeployctlError, OperationError, UsageError
from deployctl.runner import Runner
from deployctl.sandbox import image_push, images, runnable_image
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.session_marks import mark_image
from deployctl.sandbox.state_file import read_state
from deployctl.sandbox.where import ENV_VAR, command_name, locate_own, not_running


@dataclass(frozen=True)
class SandboxImage:
    app: str
    registry: str
    repository: str
    tag: str
    digest: str
    commit: str
    behaviour: str | None
    pushed: bool  # False: the tag already named this digest (nothing to push)
    state_file: str
    note: str = ""  # $DEPLOYCTL_SANDBOX names another sandbox than the one pushed to
    command: str = "sandbox image"

    @property
    def image(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}"

    def data(self) -> Mapping[str, Any]:
        return {
            "app": self.app,
            "registry": self.registry,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "commit": self.commit,
            "behaviour": self.behaviour,
            "image": self.image,
            "pushed": self.pushed,
            "state_file": self.state_file,
        }

    def text(self) -> Sequence[str]:
        done = "pushed" if self.pushed else "already there"
        lines = [f"{self.app}: {done} {self.image}", f"  tag    {self.tag}", f"  digest {self.digest}"]
        if self.behaviour:
            lines.append(f"  a broken build: its pods {self.behaviour} in the sandbox (marked)")
        return [*lines, *([self.note] if self.note else [])]


def push(
    config: LoadedConfig,
    app: str,
    *,
    runner: Runner,
    ref: str = "HEAD",
    behaviour: str | None = None,
    sandbox: Path | None = None,
) -> SandboxImage:
    """Push ``app``'s image of commit ``ref`` to the sandbox (every input problem reported at once, exit 2)."""
    problems: list[DeployctlError] = []
    apps = config.settings.apps
    if app not in apps:
        close = difflib.get_close_matches(app, list(apps), n=1)
        known = ", ".join(apps) or "none"
        problems.append(
            UsageError(
                f"unknown app {app!r}" + (f" (did you mean {close[0]!r}?)" if close else ""),
                f"apps in {config.path.name}: {known}",
            )
        )
    commit = _commit(runner, config.root, ref, problems)
    path, data = _sandbox(config, sandbox, problems)
    if problems:
        if len(problems) == 1:
            raise problems[0]
        hints = dict.fromkeys(p.hint for p in problems if p.hint)
        raise UsageError("\n  ".join(["sandbox image:", *(p.message for p in problems)]), "; ".join(hints))
    assert commit is not None  # noqa: S101 - no problem: it was found
    assert data is not None  # noqa: S101
    lab = Lab.from_state(data)
    registry = lab.config_overrides(config.settings)["apps"][app]["image"]["registry"]
    repository = apps[app].image.repository
    built = runnable_image.build(app, commit, behaviour)
    pushed = _push(registry, repository, built, commit)
    if behaviour is not None:
        mark_image(config, built.digest, behaviour, sandbox=path)
    chosen = os.environ.get(ENV_VAR)
    note = ""
    if chosen and Path(chosen).resolve() != path.resolve():
        note = f"note: ${ENV_VAR} names another sandbox ({chosen}): `deploy` in this shell looks there"
    return SandboxImage(app, registry, repository, commit, built.digest, commit, behaviour, pushed, str(path), note)


def _commit(runner: Runner, root: Path, ref: str, problems: list[DeployctlError]) -> str | None:
    try:
        return git.commit_of(runner, root, ref)
    except UsageError as exc:
        problems.append(UsageError(f"--commit {ref}: {exc.message}", exc.hint))
        return None


def _sandbox(
    config: LoadedConfig, explicit: Path | None, problems: list[DeployctlError]
) -> tuple[Path, dict[str, Any] | None]:
    try:
        path = locate_own(config, explicit)
    except UsageError as exc:
        problems.append(exc)
        return Path(), None
    data = read_state(path)
    if data is None:
        problems.append(not_running(path))
    elif not Lab.from_state(data).registry_hosts:
        problems.append(
            UsageError(
                f"the sandbox at {path} has no registry",
                f"start one with `{command_name()} sandbox up` (without --only, or with --only registry)",
            )
        )
        return path, None
    return path, data


def _push(registry: str, repository: str, built: images.SyntheticImage, tag: str) -> bool:
    """Push ``built`` under ``tag``; False when the tag already names it (the same commit pushed again)."""
    try:
        if image_push.get_manifest(registry, repository, tag)[2] == built.digest:
            return False
    except image_push.RegistryHTTPError as exc:
        if exc.status != 404:
            raise OperationError(f"the sandbox registry {registry}: {exc}") from None
    except OSError as exc:
        raise OperationError(f"the sandbox registry {registry} is unreachable: {exc}", "`sandbox status`") from None
    try:
        image_push.push_manifest(registry, repository, built, tag)
    except image_push.RegistryHTTPError as exc:
        if b"TAG_INVALID" in exc.body:  # ECR's answer for an IMMUTABLE repository (the sandbox's front)
            raise UsageError(
                f"{registry}/{repository}:{tag} already names another image, and the repository is IMMUTABLE",
                "a commit's image never changes: commit again (a new sha) and push that one",
            ) from None
        raise OperationError(f"the sandbox registry {registry}: {exc}") from None
    return True
