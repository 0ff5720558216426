"""``deployctl promote release-X.Y.Z``: run in prod exactly the image that was built on main and runs in dev.

Plan first, then act (kargo-style: the artifact is the digest, not a tag):

1. parse the release tag against the target environment's pattern;
2. resolve tag -> commit (on main) -> the image built for that commit -> its digest;
3. gate: the digest runs in the source environment, the version is newer than the
   target's, the release tag is not taken by another digest (all refusals at once);
4. show the plan (``--dry-run`` stops here);
5. under the target environment's lock: retag (same repository: manifests only)
   or copy (other registry: missing blobs only), the tag moving last;
6. record tag and digest in the target's values file (round-trip YAML edit);
7. deploy through the deploy path (unless ``--no-deploy``);
8. append the outcome to the target environment's ledger.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deployctl import git, registry, values
from deployctl.app.base import Reporter, Target, image_for, pick_app
from deployctl.config import Environment, LoadedConfig
from deployctl.errors import DeployctlError, OperationError, PolicyError, UsageError
from deployctl.history import Entry, Ledger, Override
from deployctl.model import ImageRef, InvalidValueError, ReleaseTag, Version
from deployctl.runner import Runner

log = logging.getLogger(__name__)

SKIP_DEV_CHECK = "--skip-dev-check"
ALLOW_DOWNGRADE = "--allow-downgrade"


# --------------------------------------------------------------------------------------------
# Request, facts, gates: pure
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromoteRequest:
    tag: str
    to_env: str | None = None
    app: str | None = None
    dry_run: bool = False
    skip_dev_check: bool = False
    allow_downgrade: bool = False
    reason: str | None = None
    commit: bool = False
    deploy: bool = True
    lock_timeout: float | None = None
    rollout_timeout: float = 300.0

    def overrides(self) -> tuple[Override, ...]:
        found = []
        if self.skip_dev_check:
            found.append(Override(SKIP_DEV_CHECK, self.reason or ""))
        if self.allow_downgrade:
            found.append(Override(ALLOW_DOWNGRADE, self.reason or ""))
        return tuple(found)


@dataclass(frozen=True)
class Facts:
    """What was found before anything is judged."""

    release: ReleaseTag
    commit: str
    on_main: bool
    main_ref: str
    source_env: str
    target_env: str
    source_image: ImageRef  # repository + tag (the commit sha) the build pushed
    source_digest: str | None  # what that tag names, None when the build did not push it
    source_running: str | None  # digest running (healthy) in the source environment
    source_running_from: str  # where that came from: cluster | ledger | unknown
    target_version: Version | None  # the version the target runs now
    target_digest: str | None  # the digest the target runs now
    target_from: str  # ledger | values | none
    target_tag_digest: str | None  # what the release tag names in the target repository


@dataclass(frozen=True)
class Gate:
    name: str
    ok: bool
    message: str
    override: str | None = None  # the flag that overrides it (None: cannot be overridden)
    overridden: bool = False

    @property
    def refused(self) -> bool:
        return not self.ok and not self.overridden

    def data(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "overridden": self.overridden,
            "override": self.override,
            "message": self.message,
        }


def evaluate(facts: Facts, *, skip_dev_check: bool = False, allow_downgrade: bool = False) -> tuple[Gate, ...]:
    """Every gate with its verdict (a table: see tests/unit/test_promote_plan.py)."""
    digest = facts.source_digest
    release = facts.release
    gates = [
        Gate(
            "on-main",
            facts.on_main,
            f"{release} ({facts.commit[:12]}) is on {facts.main_ref}"
            if facts.on_main
            else f"{release} points at {facts.commit[:12]}, which is not on {facts.main_ref}: "
            "only commits built on main can be released",
        ),
        Gate(
            "image-built",
            digest is not None,
            f"{facts.source_image.name}:{facts.source_image.tag} is {digest}"
            if digest
            else f"no image {facts.source_image.name}:{facts.source_image.tag}: build-image on main did not push "
            f"an image for commit {facts.commit[:12]} (run the main pipeline for it, then promote again)",
        ),
    ]
    taken = facts.target_tag_digest is not None and digest is not None and facts.target_tag_digest != digest
    gates.append(
        Gate(
            "tag-immutable",
            not taken,
            f"{release} already names {facts.target_tag_digest} in the target repository, not {digest}; "
            "release tags are immutable: cut a new release tag"
            if taken
            else f"{release} is free in the target repository"
            if facts.target_tag_digest is None
            else f"{release} already names {digest} in the target repository",
        )
    )
    done = digest is not None and facts.target_tag_digest == digest and facts.target_digest == digest
    # Without a digest there is nothing to compare: image-built already refuses.
    running_ok = done or digest is None or facts.source_running == digest
    gates.append(
        Gate(
            "running-in-source",
            running_ok,
            "not checked: no image"
            if digest is None
            else f"{digest} runs in {facts.source_env} ({facts.source_running_from})"
            if running_ok
            else f"{digest} is not what runs in {facts.source_env} "
            f"({facts.source_running or 'nothing recorded'}, from {facts.source_running_from}); "
            f"deploy it to {facts.source_env} first, or pass {SKIP_DEV_CHECK} --reason TEXT",
            SKIP_DEV_CHECK,
            overridden=not running_ok and skip_dev_check,
        )
    )
    current = facts.target_version
    newer = (
        done
        or current is None
        or release.version > current
        or (release.version == current and digest is not None and facts.target_digest == digest)
    )
    gates.append(
        Gate(
            "newer-than-target",
            newer,
            f"{release.version} replaces {current or 'nothing'} in {facts.target_env}"
            if newer
            else f"{release.version} is not newer than {current}, which {facts.target_env} runs "
            f"(from the {facts.target_from}); pass {ALLOW_DOWNGRADE} --reason TEXT to roll back deliberately",
            ALLOW_DOWNGRADE,
            overridden=not newer and allow_downgrade,
        )
    )
    return tuple(gates)


def refusal(gates: Sequence[Gate]) -> PolicyError | None:
    """One error that names every refused gate and its override (or that there is none)."""
    refused = [g for g in gates if g.refused]
    if not refused:
        return None
    lines = [f"{g.name}: {g.message}" for g in refused]
    message = lines[0] if len(lines) == 1 else f"{len(lines)} promotion checks failed:\n  " + "\n  ".join(lines)
    overrides = sorted({g.override for g in refused if g.override})
    fixed = [g.name for g in refused if g.override is None]
    if fixed:
        hint = f"{', '.join(fixed)} cannot be overridden"
        if overrides:
            hint += f"; the others: {' / '.join(overrides)} with --reason TEXT"
    else:
        hint = f"fix the cause, or override with {' and '.join(overrides)} --reason TEXT (recorded in history)"
    return PolicyError(message, hint, details={"gates": [g.data() for g in gates]})


# --------------------------------------------------------------------------------------------
# Plan and result
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PromotionPlan:
    app: str
    facts: Facts
    gates: tuple[Gate, ...]
    target_image: ImageRef  # repository + release tag + digest
    transfer: str  # ecr-retag | oci-retag | copy | noop
    values_path: Path
    values_diff: str
    helm: str
    noop: bool

    @property
    def digest(self) -> str:
        return self.facts.source_digest or ""

    def data(self) -> dict[str, Any]:
        f = self.facts
        return {
            "app": self.app,
            "release": f.release.tag,
            "version": str(f.release.version),
            "commit": f.commit,
            "digest": f.source_digest,
            "source": {"env": f.source_env, "image": f"{f.source_image.name}:{f.source_image.tag}"},
            "target": {
                "env": f.target_env,
                "image": str(self.target_image),
                "current_version": str(f.target_version) if f.target_version else None,
                "current_digest": f.target_digest,
            },
            "transfer": self.transfer,
            "gates": [g.data() for g in self.gates],
            "values": {"path": str(self.values_path), "diff": self.values_diff},
            "helm": self.helm,
            "noop": self.noop,
        }

    def text(self) -> list[str]:
        f = self.facts
        lines = [
            f"promote {f.release} to {f.target_env}" + (" (already done: nothing to change)" if self.noop else ""),
            f"  commit   {f.commit}",
            f"  digest   {f.source_digest}",
            f"  from     {f.source_image.name}:{f.source_image.tag} ({f.source_env})",
            f"  to       {self.target_image.name}:{self.target_image.tag} ({f.target_env}, {self.transfer})",
            f"  replaces {f.target_version or 'nothing'} ({f.target_digest or 'no digest'}, from {f.target_from})",
            "  checks:",
        ]
        for g in self.gates:
            mark = "ok  " if g.ok else ("OVR " if g.overridden else "FAIL")
            lines.append(f"    {mark} {g.name}: {g.message}")
        lines.append(f"  values   {self.values_path.name}: " + ("unchanged" if not self.values_diff else "will change"))
        lines.extend("    " + line for line in self.values_diff.rstrip("\n").splitlines())
        lines.append(f"  helm     {self.helm}")
        return lines


@dataclass(frozen=True)
class Step:
    name: str
    status: str  # done | noop | skipped | failed
    detail: str = ""


@dataclass(frozen=True)
class PromoteResult:
    plan: PromotionPlan
    dry_run: bool
    outcome: str  # planned | succeeded | noop | failed
    steps: tuple[Step, ...] = ()
    transfer: registry.TransferReport | None = None
    commit: str | None = None
    command: str = "promote"

    def data(self) -> Mapping[str, Any]:
        return {
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "plan": self.plan.data(),
            "steps": [{"name": s.name, "status": s.status, "detail": s.detail} for s in self.steps],
            "transfer": self.transfer.data() if self.transfer else None,
            "values_commit": self.commit,
        }

    def text(self) -> Sequence[str]:
        lines = list(self.plan.text())
        if self.dry_run:
            lines.append("dry run: nothing was changed")
            return lines
        for step in self.steps:
            lines.append(f"{step.status:>8} {step.name}" + (f": {step.detail}" if step.detail else ""))
        lines.append(f"{self.outcome}: {self.plan.facts.release} -> {self.plan.facts.target_env} ({self.plan.digest})")
        return lines


# --------------------------------------------------------------------------------------------
# The seams to the outside (real by default; tests may replace them)
# --------------------------------------------------------------------------------------------


@dataclass
class Services:
    """How promote reaches registries, ledgers, locks and the deploy path."""

    ledger: Callable[[str, Environment], Ledger] = Ledger
    endpoint: Callable[..., registry.Endpoint] = registry.endpoint
    lock: Callable[[str, Environment], Any] | None = None
    deploy: Callable[..., Any] | None = None
    policy: registry.RetryPolicy = field(default_factory=registry.RetryPolicy)

    def environment_lock(self, name: str, env: Environment) -> Any:
        if self.lock is not None:
            return self.lock(name, env)
        from deployctl.lock import EnvironmentLock

        return EnvironmentLock(name, env)

    def deploy_image(self) -> Callable[..., Any]:
        if self.deploy is not None:
            return self.deploy
        try:
            module = importlib.import_module("deployctl.app.deploy")
            function: Callable[..., Any] = module.deploy_image
        except (ImportError, AttributeError):
            raise OperationError(
                "the deploy path (deployctl.app.deploy.deploy_image) is not available in this build",
                "re-run with --no-deploy, then deploy the environment once it is",
            ) from None
        return function


# --------------------------------------------------------------------------------------------
# The use case
# --------------------------------------------------------------------------------------------


def target_env_name(config: LoadedConfig, requested: str | None) -> str:
    envs = config.settings.environments
    if requested is not None:
        if requested not in envs:
            raise UsageError(f"unknown environment {requested!r}", f"known environments: {', '.join(envs)}")
        if envs[requested].promote_from is None:
            raise UsageError(
                f"environment {requested!r} is not a promotion target (it has no promote_from)",
                f"set [tool.deployctl.environments.{requested}] promote_from = 'dev'",
            )
        return requested
    targets = [name for name, env in envs.items() if env.promote_from is not None]
    if len(targets) != 1:
        raise UsageError(
            "no environment has promote_from set" if not targets else f"several promotion targets: {targets}",
            "pass --to ENV" if targets else "set promote_from on the production environment",
        )
    return targets[0]


def parse_release(tag: str, env_name: str, env: Environment) -> ReleaseTag:
    try:
        return ReleaseTag.parse(tag, env.release_tag_pattern, allow_prerelease=env.allow_prerelease)
    except InvalidValueError as exc:
        raise UsageError(str(exc), f"{env_name} releases are tagged {env.release_tag_pattern}") from None


def _last_success(ledger: Ledger, app: str, actions: Sequence[str]) -> Entry | None:
    for entry in ledger.entries():
        if entry.app == app and entry.outcome in ("succeeded", "noop") and entry.action in actions:
            return entry
    return None


def _target_state(
    ledger: Ledger, app: str, values_now: values.ImageValues, env: Environment
) -> tuple[Version | None, str | None, str]:
    """The version and digest the target runs: its ledger's last successful promotion, else the values file."""
    for entry in ledger.entries():
        if entry.app != app or entry.action != "promote" or entry.outcome not in ("succeeded", "noop"):
            continue
        try:
            release = ReleaseTag.parse(entry.release or "", env.release_tag_pattern, allow_prerelease=True)
        except InvalidValueError:
            continue  # not a promotion-level entry
        return release.version, entry.digest, "ledger"
    if values_now.tag:
        try:
            release = ReleaseTag.parse(values_now.tag, env.release_tag_pattern, allow_prerelease=True)
        except InvalidValueError:
            log.warning("values file tag %r is not a release tag; ignoring it", values_now.tag)
        else:
            return release.version, values_now.digest or None, "values"
    return None, None, "none"


def _source_running(
    config: LoadedConfig, runner: Runner, reporter: Reporter, env_name: str, ledger: Ledger, app: str
) -> tuple[str | None, str]:
    """The digest running healthy in the source environment: the live Deployment (``status``) when the
    environment has a cluster, else the ledger's last successful deploy."""
    env = config.settings.environments[env_name]
    if env.deployable:
        from deployctl.app.status import status

        try:
            found = status(Target(config, env_name, runner, reporter), app)
        except DeployctlError as exc:
            raise OperationError(
                f"cannot read what runs in {env_name}: {exc.message}",
                f"check access to the {env_name} cluster, or pass {SKIP_DEV_CHECK} --reason TEXT",
            ) from None
        for state in found.apps:
            healthy = state.installed and state.desired > 0 and state.ready >= state.desired
            if state.app == app and state.digest:
                if healthy:
                    return state.digest, "cluster"
                return None, f"cluster: {state.digest} is not healthy ({state.ready}/{state.desired} ready)"
        return None, "cluster: not installed"
    entry = _last_success(ledger, app, ("deploy", "promote", "recover"))
    if entry is not None and entry.digest:
        return entry.digest, "ledger"
    return None, "nothing deployed according to the ledger"


def plan(
    config: LoadedConfig, runner: Runner, reporter: Reporter, request: PromoteRequest, services: Services
) -> tuple[PromotionPlan, registry.Endpoint, registry.Endpoint, values.ValuesEdit | None]:
    """Everything that will happen, found and judged before anything changes."""
    target_name = target_env_name(config, request.to_env)
    target_env = config.settings.environments[target_name]
    source_name = str(target_env.promote_from)
    source_env = config.settings.environments[source_name]
    release = parse_release(request.tag, target_name, target_env)
    if (request.skip_dev_check or request.allow_downgrade) and not (request.reason or "").strip():
        flags = " and ".join(o.flag for o in request.overrides())
        raise UsageError(f"{flags} needs --reason TEXT", "the reason is recorded in the environment's history")
    app_name, app = pick_app(config, request.app)
    if target_env.values is None:
        raise UsageError(f"environment {target_name!r} has no values file", "set 'values' for the environment")

    repo = config.root
    commit = git.tag_commit(runner, repo, release.tag)
    main_ref = git.main_ref(runner, repo, config.settings.main_branch)
    on_main = git.is_ancestor(runner, repo, commit, main_ref)

    source_repo = image_for(app, source_env)
    target_repo = image_for(app, target_env)
    source = services.endpoint(source_env, source_repo, redactor=runner.redactor, policy=services.policy)
    target = services.endpoint(target_env, target_repo, redactor=runner.redactor, policy=services.policy)
    source_image = replace(source_repo, tag=commit)
    source_digest = source.resolve(commit)
    target_tag_digest = target.resolve(release.tag)

    values_path = config.resolve(target_env.values)
    try:
        values_text = values_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"{values_path}: cannot read: {exc.strerror}", "check the environment's 'values'") from None
    values_now = values.read_image(values_text, str(values_path))
    target_version, target_digest, target_from = _target_state(
        services.ledger(target_name, target_env), app_name, values_now, target_env
    )
    running, running_from = _source_running(
        config, runner, reporter, source_name, services.ledger(source_name, source_env), app_name
    )
    facts = Facts(
        release=release,
        commit=commit,
        on_main=on_main,
        main_ref=main_ref,
        source_env=source_name,
        target_env=target_name,
        source_image=source_image,
        source_digest=source_digest,
        source_running=running,
        source_running_from=running_from,
        target_version=target_version,
        target_digest=target_digest,
        target_from=target_from,
        target_tag_digest=target_tag_digest,
    )
    gates = evaluate(facts, skip_dev_check=request.skip_dev_check, allow_downgrade=request.allow_downgrade)
    edit = (
        values.ValuesEdit(
            values_path, values_text, values.set_image(values_text, tag=release.tag, digest=source_digest)
        )
        if source_digest
        else None
    )
    noop = (
        source_digest is not None
        and target_tag_digest == source_digest
        and target_digest == source_digest
        and (edit is None or not edit.changed)
    )
    transfer = "noop" if target_tag_digest == source_digest else registry.transfer_mode(source, target)
    target_image = replace(target_repo, tag=release.tag, digest=source_digest)
    namespace = target_env.namespace or "default"
    helm = (
        "nothing (already running)"
        if noop
        else f"not deployed (--no-deploy): run `deployctl deploy {target_name}` later"
        if not request.deploy
        else f"helm upgrade --install {app.release} {app.chart} -n {namespace} -f {target_env.values} "
        f"(image {target_image.name}@{source_digest}, git sha {commit[:12]})"
    )
    promotion = PromotionPlan(
        app=app_name,
        facts=facts,
        gates=gates,
        target_image=target_image,
        transfer=transfer,
        values_path=values_path,
        values_diff=edit.diff if edit else "",
        helm=helm,
        noop=noop,
    )
    return promotion, source, target, edit


def promote(
    config: LoadedConfig,
    runner: Runner,
    reporter: Reporter,
    request: PromoteRequest,
    services: Services | None = None,
) -> PromoteResult:
    services = services or Services()
    promotion, source, target, edit = plan(config, runner, reporter, request, services)
    facts = promotion.facts
    target_env = config.settings.environments[facts.target_env]
    ledger = services.ledger(facts.target_env, target_env)
    problem = refusal(promotion.gates)
    if request.dry_run:
        if problem is not None:
            raise problem
        return PromoteResult(promotion, dry_run=True, outcome="planned")

    def record(outcome: str, message: str) -> None:
        entry = Entry(
            env=facts.target_env,
            app=promotion.app,
            action="promote",
            outcome=outcome,
            digest=facts.source_digest,
            tag=facts.release.tag,
            commit=facts.commit,
            release=facts.release.tag,
            source_env=facts.source_env,
            message=message,
            overrides=tuple(o for o in request.overrides() if _used(o.flag, promotion.gates)),
        )
        try:
            ledger.append(entry)
        except Exception as exc:  # the history must not hide the outcome it records
            if outcome == "succeeded":
                raise
            log.warning("could not record the %s promotion in the history of %s: %s", outcome, facts.target_env, exc)

    if problem is not None:
        record("refused", problem.message)
        raise problem
    if promotion.noop:
        record("noop", f"{facts.release} already runs in {facts.target_env} at {promotion.digest}")
        return PromoteResult(promotion, dry_run=False, outcome="noop", steps=(Step("promote", "noop"),))

    if facts.source_digest is None or edit is None:  # pragma: no cover - the image-built gate refused it
        raise AssertionError("a promotion without a digest passed the gates")
    lock_timeout = request.lock_timeout if request.lock_timeout is not None else target_env.lock_timeout_seconds
    lock = services.environment_lock(facts.target_env, target_env)
    try:
        with lock.hold(
            f"deployctl promote {facts.release}",
            timeout=lock_timeout,
            on_wait=lambda held: reporter.progress(f"waiting for the lock of {facts.target_env}: {held.describe()}"),
            on_takeover=lambda held: reporter.warn(f"took over the stale lock of {held.describe()}"),
        ):
            result = _act(
                config, runner, reporter, request, services, promotion, source, target, edit, lock_timeout, ledger
            )
    except DeployctlError as exc:
        record("failed", exc.message)
        raise
    except Exception as exc:
        record("failed", f"{type(exc).__name__}: {exc}")
        raise
    record("succeeded", "; ".join(f"{s.name} {s.status}" for s in result.steps))
    return result


def _act(
    config: LoadedConfig,
    runner: Runner,
    reporter: Reporter,
    request: PromoteRequest,
    services: Services,
    promotion: PromotionPlan,
    source: registry.Endpoint,
    target: registry.Endpoint,
    edit: values.ValuesEdit,
    lock_timeout: float,
    ledger: Ledger,
) -> PromoteResult:
    """Steps 5-7, under the target environment's lock: image, values file (and commit), deploy."""
    facts = promotion.facts
    digest = promotion.digest
    steps: list[Step] = []
    values_commit: str | None = None
    with reporter.phase(f"image {promotion.transfer} -> {promotion.target_image.name}:{facts.release}"):
        transfer = registry.promote_image(
            source, target, digest, facts.release.tag, progress=lambda line: log.info("%s", line)
        )
    steps.append(Step("image", "noop" if transfer.mode == "noop" else "done", _transfer_detail(transfer)))
    if edit.changed:
        edit.write()
        steps.append(Step("values", "done", f"{edit.path.name}: image.tag={facts.release}, digest={digest}"))
        if request.commit:
            values_commit = git.commit(
                runner,
                config.root,
                [edit.path],
                f"chore(release): promote {facts.release} to {facts.target_env} ({digest})",
            )
            steps.append(Step("commit", "done", values_commit[:12]))
    else:
        steps.append(Step("values", "noop", f"{edit.path.name} already records {digest}"))
    if request.deploy:
        deploy_image = services.deploy_image()
        started = time.monotonic()
        deployed: list[Entry] = []

        def keep(entry: Entry) -> None:
            # The promotion writes one entry with the deploy's outcome in it; recoveries go to the ledger as is.
            if entry.action == "promote":
                deployed.append(entry)
            else:
                ledger.append(entry)

        deploy_image(
            Target(config, facts.target_env, runner, reporter),
            promotion.app,
            promotion.target_image,
            git_sha=facts.commit,
            lock_timeout=lock_timeout,
            rollout_timeout=request.rollout_timeout,
            record=keep,
            action="promote",
            lock_held=True,
        )
        detail = deployed[-1].message if deployed else ""
        steps.append(Step("deploy", "done", f"{detail} ({time.monotonic() - started:.1f}s)".strip()))
    else:
        steps.append(Step("deploy", "skipped", "--no-deploy"))
    return PromoteResult(
        promotion, dry_run=False, outcome="succeeded", steps=tuple(steps), transfer=transfer, commit=values_commit
    )


def _used(flag: str, gates: Sequence[Gate]) -> bool:
    return any(g.overridden and g.override == flag for g in gates)


def _transfer_detail(report: registry.TransferReport) -> str:
    if report.mode == "copy":
        return (
            f"copy: {report.blobs_copied} blobs copied ({report.bytes_copied} bytes), {report.blobs_mounted} mounted, "
            f"{report.blobs_present} already there, {report.manifests_put} manifests, {report.seconds:.2f}s"
        )
    return f"{report.mode}: {report.manifests_put} manifest(s), {report.seconds:.2f}s"
