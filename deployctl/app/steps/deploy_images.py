"""Which image each app of a deploy gets: a tag or digest that was built (checked in the registry), or what the
environment's promotions recorded in its values file."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from deployctl.app.context import EnvContext
from deployctl.config import App
from deployctl.core.errors import PolicyError, UsageError
from deployctl.core.refs import DIGEST_RE, ImageRef, InvalidValueError, shown
from deployctl.ledger import labels
from deployctl.release import chartvalues

HEX_SHA_RE = re.compile(r"^[0-9a-f]{7,64}\Z")


PROMOTED = ("succeeded", "moved")  # a promotion that brought the digest (deployed, or recorded with --no-deploy)


@dataclass(frozen=True)
class ImageChoice:
    """The image chosen for one app of a deploy, and the commit it was built from when known."""

    app: str
    image: ImageRef
    git_sha: str | None


def check_input(ctx: EnvContext, names: list[str], image_tag: str | None, digest: str | None) -> None:
    """Every input problem at once, before anything is read from the registry or the cluster."""
    problems: list[str] = []
    sections = ctx.values.problems(ctx.config.settings.apps) if ctx.values.exists() else []  # matching no app
    if not ctx.values.exists():
        problems.append(f"values file {ctx.values.path} (environments.{ctx.name}.values) does not exist")
    problems += sections
    if digest is not None and not DIGEST_RE.match(digest):
        problems.append(f"--digest {shown(digest)} is not sha256:<64 hex digits>")
    if digest is not None and len(names) > 1:
        problems.append("--digest names one image, but several apps are configured: pass --app too")
    if image_tag is not None:
        for name in names:
            try:
                ctx.image(ctx.config.settings.apps[name], tag=image_tag)
            except InvalidValueError as exc:
                problems.append(f"--image-tag: {exc}")
                break
    if problems:
        hint = f"rename or remove the section: each top-level key of {ctx.values.path.name} is an app's values"
        raise UsageError(
            problems[0] if len(problems) == 1 else "\n  ".join(["invalid input:", *problems]),
            hint if sections else None,
        )


def built_images(
    ctx: EnvContext, names: list[str], image_tag: str | None, digest: str | None
) -> tuple[list[ImageChoice], list[str]]:
    """Each app's image built for the commit (CI tags each image with the commit it was built from)."""
    if image_tag is None and digest is None:
        image_tag = ctx.head_commit()
    git_sha = image_tag if image_tag is not None and HEX_SHA_RE.match(image_tag) else None
    choices: list[ImageChoice] = []
    skipped: list[str] = []
    missing: list[str] = []
    for name in names:
        app = ctx.config.settings.apps[name]
        wanted = ctx.image(app, tag=image_tag, digest=digest)
        with ctx.reporter.phase(f"resolving {wanted} in the registry"):
            try:
                choices.append(ImageChoice(name, ctx.resolve_image(wanted), git_sha))
            except UsageError as exc:
                if app.optional:
                    skipped.append(f"{name}: no image {wanted} (optional: it keeps what it runs)")
                else:
                    missing.append(f"{name}: {exc.message}")
    if missing:
        raise UsageError(
            missing[0] if len(missing) == 1 else "\n  ".join([f"{len(missing)} apps have no image:", *missing]),
            "push the images first (CI builds one per app per commit on main), mark the app optional "
            "(apps.NAME.optional), or deploy the others with --app",
        )
    return choices, skipped


def promoted_images(ctx: EnvContext, names: list[str], *, values_only: bool) -> tuple[list[ImageChoice], list[str]]:
    """Each app's image as promotion recorded it. The ledger is the source of truth: a values file edited on a
    CI runner may never have been committed, so when it lags behind the ledger's newest promotion, that
    promotion is deployed (and the lag reported). ``values_only`` (an override) takes the values file as is.
    The commit is the one the digest's newest promotion recorded when the values file has none (a promotion
    writes only the digest and tag there): a redeploy keeps ``build.gitSha``, and changes nothing when nothing
    else changed."""
    apps = ctx.config.settings.apps
    promotions = labels.of_apps(names, actions=["promote"])  # a deploy's entries are never read here
    ledger = ctx.read_ledger(question=promotions).entries if ctx.env.terraform is not None else []
    promoted = [e for e in ledger if e.action == "promote" and e.outcome in PROMOTED and e.digest]
    entries = [] if values_only else promoted
    choices: list[ImageChoice] = []
    skipped: list[str] = []
    missing: list[str] = []
    for name in names:
        app = apps[name]
        parts = chartvalues.pinned(app, ctx.values.section(name, apps))
        newest = next((e for e in entries if e.app == name), None)
        if newest is not None and newest.digest != parts.get("digest"):
            ctx.reporter.warn(
                f"{name}: {ctx.values.path.name} records {parts.get('digest') or 'no digest'}, but the newest "
                f"promotion to {ctx.name} is {newest.tag} ({newest.digest}): deploying that (commit the promotion's "
                "values edit)"
            )
            parts = {"digest": str(newest.digest), "tag": newest.tag or "", "git_sha": newest.commit or ""}
        if "digest" not in parts:
            (skipped if app.optional else missing).append(name)
            continue
        commit = parts.get("git_sha") or next(
            (e.commit for e in promoted if e.app == name and e.digest == parts["digest"] and e.commit), None
        )
        choices.append(ImageChoice(name, _image(ctx, name, app, parts), commit))
    if missing:
        raise UsageError(
            f"nothing has been promoted to {ctx.name} for {', '.join(missing)} yet (no promotion in its history, "
            f"no digest in {ctx.values.path.name})",
            "run `deployctl promote <release tag>`",
        )
    return choices, [f"{name}: nothing promoted yet (optional)" for name in skipped]


def _image(ctx: EnvContext, name: str, app: App, parts: Mapping[str, str]) -> ImageRef:
    try:
        return ctx.image(app, tag=parts.get("tag") or None, digest=parts["digest"])
    except InvalidValueError as exc:
        raise UsageError(f"{ctx.values.path}: {name}: image: {exc}", "fix it with `deployctl promote`") from None


def require_unchanged(ctx: EnvContext, names: list[str], chosen: list[ImageChoice], *, values_only: bool) -> None:
    """Lock held: what a promotion target deploys, read again; another run changed it while this one waited (a
    promotion): stop, never roll the environment back to what this run chose before it."""
    now = {c.app: c.image.digest for c in promoted_images(ctx, names, values_only=values_only)[0]}
    changed = [f"{c.app}: {c.image.digest} -> {now.get(c.app)}" for c in chosen if now.get(c.app) != c.image.digest]
    if changed:
        raise PolicyError(
            f"{ctx.name} changed while this run waited for its lock (another run promoted or deployed): "
            + "; ".join(changed),
            f"nothing was deployed; run `deployctl deploy {ctx.name}` again to redeploy what it runs now",
            details={"changed": changed},
        )
