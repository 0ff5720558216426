"""``deployctl build``: build the app image once per commit, tagged with the commit sha, and record its digest.

Only tags a second build cannot collide on are pushed: the commit sha (one build per commit; when
the registry already has it, the build is skipped and that digest reported). A moving ``latest``
goes only where it may move: an ECR repository whose tag mutability allows it (checked with
``DescribeRepositories`` before building); never to another registry unless asked (``--latest``).
Dev deploys a commit by its digest, never by a moving tag.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployctl.adapters import git, registry
from deployctl.adapters.docker import build_argv, pushed_digest
from deployctl.config import App, Image, LoadedConfig
from deployctl.core.errors import CommandFailedError, PolicyError, UsageError
from deployctl.runner import Runner

LATEST = "latest"


@dataclass(frozen=True)
class BuildResult:
    app: str
    commit: str
    tags: tuple[str, ...]
    digest: str | None
    pushed: bool
    record: str | None
    notes: tuple[str, ...] = ()  # why latest was (not) pushed, a skipped build, an unchecked registry
    command: str = "build"

    def data(self) -> Mapping[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "command"}

    def text(self) -> Sequence[str]:
        lines = [f"built {self.app} at {self.commit[:12]}"]
        lines += [f"  {tag}" for tag in self.tags]
        if self.digest:
            lines.append(f"  digest {self.digest}")
        lines += [f"  note: {note}" for note in self.notes]
        return lines


@dataclass(frozen=True)
class TagPlan:
    tags: tuple[str, ...]
    reason: str  # why latest is, or is not, among them


def plan_tags(
    image: str,
    commit: str,
    *,
    push: bool,
    latest: bool | None,
    ecr: bool,
    mutability: registry.TagMutability | None,
) -> TagPlan:
    """The tags one build gets (pure). ``latest``: None = wherever it may move, True = asked, False = never.

    The commit sha always. ``latest`` when loading locally only if asked; when pushing to ECR only if
    the repository lets ``latest`` move (asking for it there otherwise is refused: exit 4 before any
    build); when pushing elsewhere only if asked (deployctl cannot see that registry's tag rules)."""
    sha, moving = (f"{image}:{commit}",), (f"{image}:{commit}", f"{image}:{LATEST}")
    if latest is False:
        return TagPlan(sha, "latest not requested (--no-latest)")
    if not push:
        return TagPlan(moving, "latest tagged locally (asked)") if latest else TagPlan(sha, "local build: sha only")
    if not ecr:
        if latest:
            return TagPlan(moving, "latest pushed as asked (this registry's tag rules are not checked)")
        return TagPlan(sha, "latest not pushed: not an ECR registry (pass --latest to push it anyway)")
    if mutability is None:
        raise ValueError("an ECR push needs the repository's tag mutability")
    if mutability.allows_moving(LATEST):
        return TagPlan(moving, f"latest pushed: the repository is {mutability.setting}")
    if latest:
        raise PolicyError(
            f"{image} is {mutability.setting}: a moving 'latest' would be refused on the second build",
            "drop --latest (deploy by the commit's digest), or make the repository's latest tag mutable",
        )
    return TagPlan(sha, f"latest not pushed: the repository is {mutability.setting}")


@dataclass(frozen=True)
class RegistryState:
    existing: str | None  # the digest the commit tag already names
    mutability: registry.TagMutability | None
    note: str | None = None


def registry_state(image: Image, commit: str, *, latest: bool | None, ecr_client: Any | None) -> RegistryState:
    """What the registry says before building: is the commit already built, may ``latest`` move?"""
    if registry.is_ecr_host(image.registry):
        ecr = registry.Ecr(ecr_client or _ecr_client(image.registry), registry.ecr_account(image.registry))
        mutability = None if latest is False else ecr.mutability(image.repository)
        return RegistryState(ecr.describe(image.repository, commit), mutability)
    try:
        return RegistryState(registry.OciRegistry(image.registry).resolve(image.repository, commit), None)
    except registry.RegistryError as exc:
        # A private registry deployctl has no credentials for: buildx has them, and the registry decides.
        return RegistryState(None, None, f"could not check {image.ref}:{commit} first ({exc.message.splitlines()[0]})")


def _ecr_client(host: str) -> Any:
    """An ECR client from the standard AWS chain (CI: the OIDC role) in the registry's region."""
    import boto3

    return boto3.client("ecr", region_name=registry.ecr_region(host))


def _pick_app(config: LoadedConfig, requested: str | None) -> tuple[str, App]:
    apps = config.settings.apps
    if requested is None and len(apps) == 1:
        requested = next(iter(apps))
    if requested is None or requested not in apps:
        known = ", ".join(apps) or "(none: add [tool.deployctl.apps.NAME])"
        what = f"unknown app {requested!r}" if requested else f"{len(apps)} apps are configured: say which one"
        raise UsageError(what, f"pass --app (one of: {known})")
    return requested, apps[requested]


def build(
    config: LoadedConfig,
    runner: Runner,
    *,
    app_name: str | None,
    context: Path,
    push: bool,
    latest: bool | None = None,
    platforms: Sequence[str] = (),
    ecr_client: Any | None = None,
) -> BuildResult:
    app_name, app = _pick_app(config, app_name)
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a directory", "pass --context DIR")
    image = app.image
    commit = git.head(runner, config.root)
    state = registry_state(image, commit, latest=latest, ecr_client=ecr_client) if push else None
    notes = [state.note] if state and state.note else []
    if state is not None and state.existing is not None:
        notes.append(f"{image.ref}:{commit} already exists: this commit is built, nothing was pushed")
        return BuildResult(app_name, commit, (f"{image.ref}:{commit}",), state.existing, False, None, tuple(notes))
    is_ecr = registry.is_ecr_host(image.registry)
    plan = plan_tags(
        image.ref, commit, push=push, latest=latest, ecr=is_ecr, mutability=state.mutability if state else None
    )
    notes.append(plan.reason)
    with tempfile.TemporaryDirectory(prefix="deployctl-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        argv = build_argv(
            context=context, tags=plan.tags, revision=commit, metadata_file=metadata, push=push, platforms=platforms
        )
        try:
            runner.run(argv, cwd=config.root, stream=True, hint="see the docker output above (-v shows it live)")
        except CommandFailedError:
            if state is not None:
                _raise_if_raced(image, commit, ecr_client=ecr_client)
            raise
        digest = pushed_digest(metadata) if push else None
    record = _record(config, app_name, commit, plan.tags, digest) if digest is not None else None
    return BuildResult(app_name, commit, plan.tags, digest, push, record, tuple(notes))


def _raise_if_raced(image: Image, commit: str, *, ecr_client: Any | None) -> None:
    """A failed push whose commit tag now exists lost a race (the registry said TAG_INVALID): exit 4."""
    now = registry_state(image, commit, latest=False, ecr_client=ecr_client).existing
    if now is not None:
        raise PolicyError(
            f"{image.ref}:{commit} was pushed by another run while this build ran (it names {now}); "
            "tags are immutable, so this build's image was not tagged",
            f"the commit's image is {now}: deploy it by digest, or re-run build (it reports that digest)",
        )


def _record(config: LoadedConfig, app_name: str, commit: str, tags: Sequence[str], digest: str) -> str:
    builds = config.state_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    path = builds / f"{app_name}-{commit}.json"
    built_at = datetime.now(UTC).isoformat(timespec="seconds")
    document = {"app": app_name, "commit": commit, "tags": list(tags), "digest": digest, "built_at": built_at}
    path.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return str(path)
