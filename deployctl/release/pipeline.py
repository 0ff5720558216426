"""The trunk-based pipeline as data: which steps run for a CI event and git ref.

Pure code (no I/O): the workflow YAML only asks ``deployctl ci steps`` and runs
what it says, so the flow is tested here as a table, not only in YAML.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from typing import NamedTuple, Protocol

from deployctl.core.errors import InvalidValueError

CI_EVENTS = ("pull_request", "push", "workflow_dispatch")


class EnvironmentRoute(Protocol):
    """What the pipeline reads of an environment (``config.Environment``, or ``config.routing``'s view)."""

    @property
    def deployable(self) -> bool: ...
    @property
    def promote_from(self) -> str | None: ...
    @property
    def release_tag_pattern(self) -> str: ...
    @property
    def allow_prerelease(self) -> bool: ...


class RouteConfig(Protocol):
    """What the pipeline reads of the configuration (``config.DeployctlConfig``, or ``config.routing.Routing``:
    ``ci steps`` routes without pydantic)."""

    @property
    def environments(self) -> Mapping[str, EnvironmentRoute]: ...
    @property
    def main_branch(self) -> str: ...
    @property
    def shared_branch(self) -> str: ...
    @property
    def release_on_version_bump(self) -> bool: ...


# NamedTuples, not dataclasses, and the model imported where a tag is parsed: `ci steps` runs on every pipeline
# run, and importing dataclasses (inspect, ast) would be a third of its start-up.
class Step(NamedTuple):
    id: str
    run: str
    env: str | None = None  # the environment it mutates or reads (concurrency group)
    needs: tuple[str, ...] = ()
    mutates: bool = False


class Pipeline(NamedTuple):
    event: str
    ref: str
    kind: str  # pull-request | main | release | shared | branch | none
    steps: tuple[Step, ...] = ()
    reason: str = ""
    release: str | None = None
    environments: tuple[str, ...] = ()


class Roles(NamedTuple):
    """Which configured environment plays which part in the flow."""

    dev: str
    prod: str
    shared: tuple[str, ...]


def roles(config: RouteConfig) -> Roles:
    shared = tuple(name for name, env in config.environments.items() if not env.deployable)
    for name, env in config.environments.items():
        if env.promote_from:
            return Roles(dev=env.promote_from, prod=name, shared=shared)
    raise InvalidValueError("no environment has 'promote_from': the pipeline needs a promotion target (prod)")


def _checks() -> list[Step]:
    return [Step("check", "make check"), Step("test", "make test")]


def _plan(env: str, needs: tuple[str, ...] = ("check",)) -> Step:
    return Step(f"plan-{env}", f"deployctl plan {env} --detailed-exitcode", env=env, needs=needs)


def steps_for(config: RouteConfig, event: str, ref: str) -> Pipeline:
    """The steps for ``event`` on ``ref`` (e.g. ``push`` + ``refs/tags/release-1.4.0``)."""
    if event not in CI_EVENTS:
        raise InvalidValueError(f"unknown CI event {event!r}: expected one of {', '.join(CI_EVENTS)}")
    r = roles(config)
    if event == "pull_request":
        steps = [*_checks(), _plan(r.dev), _plan(r.prod)]
        return Pipeline(event, ref, "pull-request", tuple(steps), "review: checks and both plans")
    if ref == f"refs/heads/{config.main_branch}":
        steps = [
            *_checks(),
            _plan(r.dev),
            _plan(r.prod),  # the reviewed prod plan, kept as an artifact
            Step("build-image", "deployctl build --push", needs=("test",)),
            Step("apply-dev", f"deployctl apply {r.dev} --auto-approve", env=r.dev, needs=("plan-dev",), mutates=True),
            Step(
                "deploy-dev",
                f"deployctl deploy {r.dev}",
                env=r.dev,
                needs=("build-image", "apply-dev"),
                mutates=True,
            ),
        ]
        if config.release_on_version_bump:
            # After dev runs the commit: a new project.version tags it, and the tag's promotion follows.
            steps.append(Step("release-tag", "deployctl ci release-tag --push", needs=("deploy-dev",), mutates=True))
        return Pipeline(event, ref, "main", tuple(steps), "trunk: build once, deploy dev", environments=(r.dev,))
    if ref.startswith("refs/tags/"):
        tag = ref.removeprefix("refs/tags/")
        env = config.environments[r.prod]
        try:
            from deployctl.core.refs import ReleaseTag  # here: a release ref only

            release = ReleaseTag.parse(tag, env.release_tag_pattern, allow_prerelease=env.allow_prerelease)
        except InvalidValueError as exc:
            return Pipeline(event, ref, "none", (), f"tag is not a release: {exc}")
        # One step on purpose: promote retags THEN deploys prod, in that order, under prod's lock.
        step = Step("promote", f"deployctl promote {release.tag}", env=r.prod, mutates=True)
        return Pipeline(event, ref, "release", (step,), "release: promote dev's image to prod", release.tag, (r.prod,))
    if ref == f"refs/heads/{config.shared_branch}":
        steps = []
        for name in r.shared:
            steps.append(_plan(name, needs=()))
            steps.append(
                Step(
                    f"apply-{name}",
                    f"deployctl apply {name} --auto-approve",
                    env=name,
                    needs=(f"plan-{name}",),
                    mutates=True,
                )
            )
        return Pipeline(event, ref, "shared", tuple(steps), "shared terraform only", environments=r.shared)
    if ref.startswith("refs/heads/"):
        return Pipeline(event, ref, "branch", (*_checks(), _plan(r.dev)), "feature branch: checks and the dev plan")
    return Pipeline(event, ref, "none", (), f"no pipeline for ref {ref!r}")


class VersionBump(NamedTuple):
    """What the version-bump route does for the version on main: ``tag`` to create, or None and why not."""

    version: str
    tag: str | None
    reason: str


def project_version(pyproject: str) -> str:
    """``project.version`` (or Poetry's ``tool.poetry.version``) of a pyproject.toml's text."""
    try:
        data = tomllib.loads(pyproject)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidValueError(f"pyproject.toml is not valid TOML: {exc}") from None
    version = data.get("project", {}).get("version") or data.get("tool", {}).get("poetry", {}).get("version")
    if not isinstance(version, str):
        raise InvalidValueError("pyproject.toml has no static project.version to release")
    return version


def version_bump(config: RouteConfig, version: str, tags: Iterable[str]) -> VersionBump:
    """The release tag for ``version`` (the promotion target's pattern, e.g. ``release-1.4.0``) when the version is
    new: no such tag yet, and newer than every release in ``tags`` (the repository's tags). A version that is not
    valid for the pattern raises InvalidValueError; an older one is not released (versions only go up)."""
    from deployctl.core.refs import ReleaseTag

    target = config.environments[roles(config).prod]
    pattern = target.release_tag_pattern
    wanted = ReleaseTag.parse(pattern.replace("<semver>", version), pattern, allow_prerelease=target.allow_prerelease)
    released = []
    for tag in tags:
        try:
            released.append(ReleaseTag.parse(tag, pattern, allow_prerelease=True))
        except InvalidValueError:
            continue
    if any(r.tag == wanted.tag for r in released):
        return VersionBump(version, None, f"{wanted.tag} exists: version {version} is released")
    newest = max(released, key=lambda r: r.version, default=None)
    if newest is not None and not newest.version < wanted.version:
        return VersionBump(version, None, f"version {version} is not newer than {newest.tag}: nothing to release")
    return VersionBump(version, wanted.tag, f"version {version} is new: tag {wanted.tag}")
