"""``deployctl deploy ENV``: every app (or ``--app``), by digest, onto one environment, each watched until it serves.

Validate everything first (each app's image in the registry, its chart renders with its values), take
the environment lock once, then roll the apps out in ``needs`` levels, the apps of a level together
(``levels``; each ``base.roll_out``: settle what an interrupted run left, ``helm upgrade --install`` without
``--wait``, watch the rollout failing within seconds, verify the release is healthy, record the verdict),
stopping after the first level with a failure. Refused during a change window (``base.require_window``);
a failure is announced (``deploy-failed``). Never rolls back: a broken rollout leaves the old pods serving,
and the fix is rolled forward.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deployctl.app.base import plan_rollout, require_window, roll_out, roll_out_waves
from deployctl.app.context import EnvContext
from deployctl.config import App, deploy_order
from deployctl.core.errors import DeployctlError, PolicyError, UsageError
from deployctl.core.refs import DIGEST_RE, ImageRef, InvalidValueError, shown
from deployctl.ledger.store import Entry, Override
from deployctl.notify import send as notify
from deployctl.release import chartvalues
from deployctl.rollout import levels
from deployctl.rollout.results import DeployResult, RolloutPlan
from deployctl.rollout.waves import Target

HEX_SHA_RE = re.compile(r"^[0-9a-f]{7,64}\Z")
ALLOW_UNPROMOTED = "--allow-unpromoted"
PROMOTED = ("succeeded", "moved")  # a promotion that brought the digest (deployed, or recorded with --no-deploy)
DEFAULT_ROLLOUT_TIMEOUT = 600.0


@dataclass(frozen=True)
class DeployReport:
    env: str
    apps: tuple[DeployResult, ...]
    skipped: tuple[str, ...] = ()  # optional apps with no image for this commit: they keep what they run
    command: str = "deploy"

    def data(self) -> Mapping[str, Any]:
        return {"env": self.env, "apps": [a.data() for a in self.apps], "skipped": list(self.skipped)}

    def text(self) -> Sequence[str]:
        lines = [line for result in self.apps for line in result.text()]
        return lines + [f"skipped {item}" for item in self.skipped]


@dataclass(frozen=True)
class _Choice:
    app: str
    image: ImageRef
    git_sha: str | None


def deploy(
    ctx: EnvContext,
    *,
    app: str | None = None,
    image_tag: str | None = None,
    digest: str | None = None,
    lock_timeout: float | None = None,
    rollout_timeout: float = DEFAULT_ROLLOUT_TIMEOUT,
    allow_unpromoted: str | None = None,
    override_freeze: str | None = None,
) -> DeployReport:
    """Resolve every app's image, validate everything, take the lock, then roll the apps out in order.

    An environment that takes images only by promotion deploys only digests its ledger shows promoted
    (checked again under the lock); ``allow_unpromoted`` (the reason) overrides that and is recorded.
    Refused inside a change window of the environment unless ``override_freeze`` (the reason) is given."""
    ctx.require_deployable()
    env = ctx.env
    names = [ctx.app(app)[0]] if app is not None else deploy_order(ctx.config.settings.apps)
    if env.promote_from is not None and (image_tag is not None or digest is not None):
        raise PolicyError(
            f"{ctx.name} takes images only by promotion from {env.promote_from}",
            f"run `deployctl promote <release tag>`; `deployctl deploy {ctx.name}` alone re-deploys "
            "the promoted digests from the values file",
        )
    _check_input(ctx, names, image_tag, digest)
    if env.promote_from is not None:
        choices, skipped = _promoted_images(ctx, names, values_only=allow_unpromoted is not None)
    else:
        choices, skipped = _built_images(ctx, names, image_tag, digest)
    overrides: tuple[Override, ...] = (Override(ALLOW_UNPROMOTED, allow_unpromoted),) if allow_unpromoted else ()
    # the images exist: a refusal comes before any chart is rendered, an override before the lock
    freeze = require_window(ctx, "deploy", override_freeze)
    overrides += (freeze,) if freeze is not None else ()
    needs = {c.app: ctx.config.settings.apps[c.app].needs for c in choices}
    targets = ctx.targets()
    with ctx.clusters() as clusters, tempfile.TemporaryDirectory(prefix="deployctl-values-") as workdir:
        plans = {
            t.name: [
                plan_rollout(ctx, clusters[t.name], c.app, _in(ctx, c, t), c.git_sha, _dir(Path(workdir), t))
                for c in choices
            ]
            for t in targets
        }
        first = plans[targets[0].name]
        with ctx.locked(f"deploy {ctx.name} " + " ".join(f"--app {p.app}" for p in first), lock_timeout):
            # judged again now that nobody else can change the environment: a window may have begun, and a promotion
            # may have moved it on while this run waited (its choice would roll that back)
            if freeze is None:
                freeze = require_window(ctx, "deploy", override_freeze)
                overrides += (freeze,) if freeze is not None else ()
            if env.promote_from is not None:
                _require_unchanged(ctx, names, choices, values_only=allow_unpromoted is not None)
            if env.promote_from is not None and not allow_unpromoted:
                _require_promoted(ctx, first)

            def roll(target: Target, done: list[DeployResult]) -> None:
                planned = {p.app: p for p in plans[target.name]}

                def one(app: str) -> DeployResult:
                    plan = planned[app]
                    entry = Entry(
                        env=ctx.name,
                        app=plan.app,
                        action="deploy",
                        outcome="",
                        digest=plan.image.digest,
                        tag=plan.image.tag,
                        commit=plan.git_sha,
                        overrides=overrides,
                        cluster=target.name,
                    )
                    return roll_out(ctx, clusters[target.name], plan, entry, timeout=rollout_timeout, wave=target.wave)

                ran = levels.run(list(planned), needs, one, say=ctx.reporter.progress)
                done.extend(result for _, result in ran.done)
                if not ran.ok:  # several clusters: the error says what each cluster runs
                    raise ran.error(_runs, listing=not ctx.several, later="not started (keeps what it ran)")

            try:
                done = roll_out_waves(ctx, clusters, plans, roll, action="deploy")
            except DeployctlError as exc:
                apps = tuple((p.app, p.image.digest) for p in first)
                summary = f"deploy of {', '.join(a for a, _ in apps)} to {ctx.name} failed"
                failure, reason = notify.first_line(exc.message), freeze.reason if freeze else None
                ctx.announce(
                    notify.Event(
                        "deploy-failed", ctx.name, summary, apps=apps, verdict="failed", failure=failure, reason=reason
                    )
                )
                raise
    return DeployReport(ctx.name, tuple(done), tuple(skipped))


def _in(ctx: EnvContext, choice: _Choice, target: Target) -> ImageRef:
    """``choice``'s image where ``target`` pulls it (its own registry: the digest must be there)."""
    image = ctx.image(ctx.config.settings.apps[choice.app], tag=choice.image.tag, target=target)
    image = replace(image, digest=choice.image.digest)
    if image.registry != choice.image.registry:
        with ctx.reporter.phase(f"checking {image.pinned} for cluster {target.name}"):
            ctx.resolve_image(replace(image, tag=None))
    return image


def _dir(workdir: Path, target: Target) -> Path:
    """Where ``target``'s values files go (each cluster pins the image in its own registry)."""
    if target.name is None:
        return workdir
    (workdir / target.name).mkdir(exist_ok=True)
    return workdir / target.name


def _check_input(ctx: EnvContext, names: list[str], image_tag: str | None, digest: str | None) -> None:
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


def _built_images(
    ctx: EnvContext, names: list[str], image_tag: str | None, digest: str | None
) -> tuple[list[_Choice], list[str]]:
    """Each app's image built for the commit (CI tags each image with the commit it was built from)."""
    if image_tag is None and digest is None:
        image_tag = ctx.head_commit()
    git_sha = image_tag if image_tag is not None and HEX_SHA_RE.match(image_tag) else None
    choices: list[_Choice] = []
    skipped: list[str] = []
    missing: list[str] = []
    for name in names:
        app = ctx.config.settings.apps[name]
        wanted = ctx.image(app, tag=image_tag, digest=digest)
        with ctx.reporter.phase(f"resolving {wanted} in the registry"):
            try:
                choices.append(_Choice(name, ctx.resolve_image(wanted), git_sha))
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


def _promoted_images(ctx: EnvContext, names: list[str], *, values_only: bool) -> tuple[list[_Choice], list[str]]:
    """Each app's image as promotion recorded it. The ledger is the source of truth: a values file edited on a
    CI runner may never have been committed, so when it lags behind the ledger's newest promotion, that
    promotion is deployed (and the lag reported). ``values_only`` (an override) takes the values file as is.
    The commit is the one the digest's newest promotion recorded when the values file has none (a promotion
    writes only the digest and tag there): a redeploy keeps ``build.gitSha``, and changes nothing when nothing
    else changed."""
    apps = ctx.config.settings.apps
    ledger = ctx.read_ledger().entries if ctx.env.terraform is not None else []
    promoted = [e for e in ledger if e.action == "promote" and e.outcome in PROMOTED and e.digest]
    entries = [] if values_only else promoted
    choices: list[_Choice] = []
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
        choices.append(_Choice(name, _image(ctx, name, app, parts), commit))
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


def _require_unchanged(ctx: EnvContext, names: list[str], chosen: list[_Choice], *, values_only: bool) -> None:
    """Lock held: what a promotion target deploys, read again; another run changed it while this one waited (a
    promotion): stop, never roll the environment back to what this run chose before it."""
    now = {c.app: c.image.digest for c in _promoted_images(ctx, names, values_only=values_only)[0]}
    changed = [f"{c.app}: {c.image.digest} -> {now.get(c.app)}" for c in chosen if now.get(c.app) != c.image.digest]
    if changed:
        raise PolicyError(
            f"{ctx.name} changed while this run waited for its lock (another run promoted or deployed): "
            + "; ".join(changed),
            f"nothing was deployed; run `deployctl deploy {ctx.name}` again to redeploy what it runs now",
            details={"changed": changed},
        )


def _require_promoted(ctx: EnvContext, plans: list[RolloutPlan]) -> None:
    """Refuse a digest no promotion brought here (the values file is a file anyone can edit), or whose promotion
    failed or never deployed it because another app failed: promoting that release again re-judges its gate."""
    entries = ctx.read_ledger().entries
    for plan in plans:
        digest = plan.image.digest
        mine = [e for e in entries if e.app == plan.app and e.action == "promote" and e.digest == digest]
        if not any(e.outcome in PROMOTED for e in mine):
            why = "its promotion failed there" if mine else "its ledger has no promotion of it"
            raise PolicyError(
                f"{plan.app}: {digest} (from {ctx.values.path.name}) was never promoted to {ctx.name}: {why}",
                f"promote a release (`deployctl promote release-X.Y.Z`), or pass {ALLOW_UNPROMOTED} --reason TEXT "
                "(recorded in the history)",
            )


def _runs(result: DeployResult) -> str:
    return f"runs {result.image.digest} (rolled out)"
