"""``deployctl deploy ENV``: one image, by digest, onto one environment, watched until it serves.

Validate (app, values file, image in the registry, chart renders) -> take the environment
lock -> roll out (``base.roll_out``: recover a release left pending by a killed run, ``helm
upgrade --install`` without ``--wait``, watch the rollout failing within seconds on
ImagePullBackOff/CrashLoopBackOff, verify the release is healthy, record the verdict). Never
rolls back: a broken rollout leaves the old pods serving, and the fix is rolled forward.
"""

from __future__ import annotations

import re

from deployctl.app.base import DeployResult, plan_rollout, roll_out
from deployctl.app.context import EnvContext
from deployctl.config import App
from deployctl.errors import PolicyError, UsageError
from deployctl.history import Entry, Override
from deployctl.model import DIGEST_RE, ImageRef, InvalidValueError

HEX_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
ALLOW_UNPROMOTED = "--allow-unpromoted"
DEFAULT_ROLLOUT_TIMEOUT = 600.0


def deploy(
    ctx: EnvContext,
    *,
    app: str | None = None,
    image_tag: str | None = None,
    digest: str | None = None,
    lock_timeout: float | None = None,
    rollout_timeout: float = DEFAULT_ROLLOUT_TIMEOUT,
    allow_unpromoted: str | None = None,
) -> DeployResult:
    """Resolve the image, validate everything, take the lock, then roll it out.

    An environment that takes images only by promotion deploys only a digest its ledger shows promoted
    (checked again under the lock); ``allow_unpromoted`` (the reason) overrides that and is recorded."""
    ctx.require_deployable()
    app_name, app_config = ctx.app(app)
    env = ctx.env
    if env.promote_from is not None and (image_tag is not None or digest is not None):
        raise PolicyError(
            f"{ctx.name} takes images only by promotion from {env.promote_from}",
            f"run `deployctl promote <release tag>`; `deployctl deploy {ctx.name}` alone re-deploys "
            "the promoted digest from the values file",
        )
    problems: list[str] = []
    if not ctx.values.exists():
        problems.append(f"values file {ctx.values.path} (environments.{ctx.name}.values) does not exist")
    if digest is not None and not DIGEST_RE.match(digest):
        problems.append(f"--digest {digest!r} is not sha256:<64 hex digits>")
    if image_tag is not None:
        try:
            ctx.image(app_config, tag=image_tag)
        except InvalidValueError as exc:
            problems.append(f"--image-tag: {exc}")
    if problems:
        raise UsageError(problems[0] if len(problems) == 1 else "\n  ".join(["invalid input:", *problems]))

    if env.promote_from is not None:
        image, git_sha = _promoted_image(ctx, app_config)
    else:
        if image_tag is None and digest is None:
            image_tag = ctx.head_commit()
        # CI tags each image with the commit it was built from
        git_sha = image_tag if image_tag is not None and HEX_SHA_RE.match(image_tag) else None
        image = ctx.image(app_config, tag=image_tag, digest=digest)
    with ctx.reporter.phase(f"resolving {image} in the registry"):
        image = ctx.resolve_image(image)
    overrides = (Override(ALLOW_UNPROMOTED, allow_unpromoted),) if allow_unpromoted else ()
    entry = Entry(
        env=ctx.name,
        app=app_name,
        action="deploy",
        outcome="",
        digest=image.digest,
        tag=image.tag,
        commit=git_sha,
        overrides=overrides,
    )
    with ctx.cluster() as cluster:
        plan = plan_rollout(ctx, cluster, app_name, image, git_sha)
        with ctx.locked(f"deploy {ctx.name} --app {app_name}", lock_timeout):
            if env.promote_from is not None and not allow_unpromoted:
                _require_promoted(ctx, app_name, str(image.digest))
            return roll_out(ctx, cluster, plan, entry, timeout=rollout_timeout)


def _require_promoted(ctx: EnvContext, app: str, digest: str) -> None:
    """Refuse a digest no promotion brought here: the values file is a file anyone can edit."""
    if any(e.app == app and e.action == "promote" and e.digest == digest for e in ctx.ledger.entries()):
        return
    raise PolicyError(
        f"{digest} (from {ctx.values.path.name}) was never promoted to {ctx.name}: its ledger has no promotion of it",
        f"promote a release (`deployctl promote release-X.Y.Z`), or pass {ALLOW_UNPROMOTED} --reason TEXT "
        "(recorded in the history)",
    )


def _promoted_image(ctx: EnvContext, app: App) -> tuple[ImageRef, str | None]:
    """What the values file of a promotion target pins (written by ``promote``)."""
    pinned = ctx.values.image()
    if not pinned.digest:
        raise UsageError(
            f"{ctx.values.path} has no image.digest: nothing has been promoted to {ctx.name} yet",
            "run `deployctl promote <release tag>`",
        )
    try:
        image = ctx.image(app, tag=pinned.tag or None, digest=pinned.digest)
    except InvalidValueError as exc:
        raise UsageError(f"{ctx.values.path}: image: {exc}", "fix it with `deployctl promote`, not by hand") from None
    return image, pinned.git_sha or None
