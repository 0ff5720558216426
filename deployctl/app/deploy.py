"""``deployctl deploy ENV``: one image, by digest, onto one environment, watched until it serves.

Validate (app, values file, image in the registry, chart renders) -> take the environment
lock -> recover a release left pending by a killed run -> ``helm upgrade --install`` (no
``--wait``) -> watch the rollout, failing within seconds on ImagePullBackOff/CrashLoopBackOff
-> record the outcome in the history. Never rolls back: a broken rollout leaves the old pods
serving, and the fix is rolled forward.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deployctl import git, helm, kube, registry
from deployctl.app.base import Target, image_for
from deployctl.config import App
from deployctl.errors import DeployctlError, OperationError, PolicyError, UsageError
from deployctl.history import Entry, Ledger
from deployctl.model import DIGEST_RE, ImageRef, InvalidValueError

HEX_SHA_RE = re.compile(r"^[0-9a-f]{7,64}$")
DEFAULT_ROLLOUT_TIMEOUT = 600.0


@dataclass(frozen=True)
class DeployResult:
    env: str
    app: str
    release: str
    namespace: str
    image: ImageRef
    git_sha: str | None
    revision: int
    helm_version: int
    outcome: str  # succeeded | failed
    message: str
    duration_seconds: float
    recovered: tuple[str, ...] = ()
    command: str = "deploy"

    def data(self) -> Mapping[str, Any]:
        return {
            "env": self.env,
            "app": self.app,
            "release": self.release,
            "namespace": self.namespace,
            "image": {
                "repository": self.image.name,
                "tag": self.image.tag,
                "digest": self.image.digest,
                "reference": self.image.pinned,
            },
            "git_sha": self.git_sha,
            "revision": self.revision,
            "helm_major_version": self.helm_version,
            "outcome": self.outcome,
            "message": self.message,
            "duration_seconds": round(self.duration_seconds, 2),
            "recovered": list(self.recovered),
        }

    def text(self) -> Sequence[str]:
        lines = [
            f"deployed {self.app} to {self.env} (release {self.release} revision {self.revision}, "
            f"namespace {self.namespace}) in {self.duration_seconds:.1f}s",
            f"  image   {self.image.pinned}" + (f"  (tag {self.image.tag})" if self.image.tag else ""),
        ]
        if self.git_sha:
            lines.append(f"  commit  {self.git_sha}")
        lines.append(f"  rollout {self.message}")
        lines += [f"  recovered {item}" for item in self.recovered]
        return lines


# --------------------------------------------------------------------------- the CLI use case


def deploy(
    target: Target,
    *,
    app: str | None = None,
    image_tag: str | None = None,
    digest: str | None = None,
    lock_timeout: float | None = None,
    rollout_timeout: float = DEFAULT_ROLLOUT_TIMEOUT,
) -> DeployResult:
    """Resolve the image, validate everything, then deploy it (see ``deploy_image``)."""
    target.require_deployable()
    app_name, app_config = target.app(app)
    env = target.env
    problems: list[str] = []
    values_file = values_path(target)
    if not values_file.is_file():
        problems.append(f"values file {values_file} (environments.{target.name}.values) does not exist")
    if digest is not None and not DIGEST_RE.match(digest):
        problems.append(f"--digest {digest!r} is not sha256:<64 hex digits>")
    if image_tag is not None:
        try:
            image_for(app_config, env, tag=image_tag)
        except InvalidValueError as exc:
            problems.append(f"--image-tag: {exc}")
    if env.promote_from is not None and (image_tag is not None or digest is not None):
        raise PolicyError(
            f"{target.name} takes images only by promotion from {env.promote_from}",
            f"run `deployctl promote <release tag>`; `deployctl deploy {target.name}` alone re-deploys "
            "the promoted digest from the values file",
        )
    if problems:
        raise UsageError(problems[0] if len(problems) == 1 else "\n  ".join(["invalid input:", *problems]))

    git_sha: str | None = None
    if env.promote_from is not None:
        image = _promoted_image(target, app_config, values_file)
        git_sha = _built_from(values_file)
    else:
        if image_tag is None and digest is None:
            image_tag = _head_commit(target)
        if image_tag is not None and HEX_SHA_RE.match(image_tag):
            git_sha = image_tag  # CI tags each image with the commit it was built from
        image = image_for(app_config, env, tag=image_tag, digest=digest)
    with target.reporter.phase(f"resolving {image} in the registry"):
        image = resolve_image(target, image)
    return deploy_image(
        target,
        app_name,
        image,
        git_sha=git_sha,
        lock_timeout=float(env.lock_timeout_seconds if lock_timeout is None else lock_timeout),
        rollout_timeout=rollout_timeout,
    )


def resolve_image(target: Target, image: ImageRef) -> ImageRef:
    """The image with its digest from the registry (a given digest is checked to exist). Exit 2 when absent."""
    redactor = target.runner.redactor
    if image.digest is not None:
        found = (
            registry.endpoint(target.env, image, redactor=redactor)
            .registry_api()
            .resolve(image.repository, image.digest)
        )
        what = f"digest {image.digest}"
    else:
        found = registry.resolve(target.env, image, redactor=redactor)
        what = f"tag {image.tag!r}"
    if found is None:
        raise UsageError(
            f"image {what} not found in {image.name}",
            "push the image first (CI builds one per commit on main), or pass --image-tag/--digest of an "
            "image that exists",
        )
    return ImageRef(image.registry, image.repository, tag=image.tag, digest=found)


def values_path(target: Target) -> Path:
    assert target.env.values is not None  # noqa: S101 (deployable environments have values)
    return target.config.resolve(target.env.values)


def _head_commit(target: Target) -> str:
    try:
        result = target.runner.run(["git", "-C", str(target.config.root), "rev-parse", "HEAD"], timeout=git.TIMEOUT)
    except DeployctlError:
        raise UsageError(
            f"cannot read the current git commit in {target.config.root}",
            "run from a git checkout, or pass --image-tag TAG (or --digest sha256:...)",
        ) from None
    return result.stdout.strip()


def _read_values(values_file: Path) -> dict[str, Any]:
    data = yaml.safe_load(values_file.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise UsageError(f"{values_file}: not a YAML mapping")
    return data


def _promoted_image(target: Target, app: App, values_file: Path) -> ImageRef:
    image = _read_values(values_file).get("image") or {}
    digest = str(image.get("digest") or "")
    tag = str(image.get("tag") or "") or None
    if not digest:
        raise UsageError(
            f"{values_file} has no image.digest: nothing has been promoted to {target.name} yet",
            "run `deployctl promote <release tag>`",
        )
    try:
        return image_for(app, target.env, tag=tag, digest=digest)
    except InvalidValueError as exc:
        raise UsageError(f"{values_file}: image: {exc}", "fix it with `deployctl promote`, not by hand") from None


def _built_from(values_file: Path) -> str | None:
    build = _read_values(values_file).get("build") or {}
    sha = str(build.get("gitSha") or "")
    return sha or None


# --------------------------------------------------------------------------- the stable entry point (promote uses it)


def deploy_image(
    target: Target,
    app_name: str,
    image: ImageRef,
    *,
    git_sha: str | None,
    lock_timeout: float,
    rollout_timeout: float,
    record: Callable[[Entry], None] | None = None,
    action: str = "deploy",
    extra_set: Mapping[str, str] | None = None,
    lock_held: bool = False,
) -> DeployResult:
    """Deploy ``image`` (digest required) of ``app_name`` to ``target`` and watch it roll out.

    Takes the environment lock unless ``lock_held``. Records one history entry (``action``)
    with the outcome through ``record`` (default: the environment's ledger). Raises
    OperationError (exit 1) when the rollout fails; the old pods keep serving.
    """
    if image.digest is None:
        raise UsageError(f"{image}: deploy needs a digest (resolve the tag first)")
    target.require_deployable()
    _, app = target.app(app_name)
    env = target.env
    assert env.namespace is not None  # noqa: S101 (deployable environments have a namespace)
    namespace = env.namespace
    values_file = values_path(target)
    if not values_file.is_file():
        raise UsageError(f"values file {values_file} (environments.{target.name}.values) does not exist")
    chart = target.config.resolve(app.chart)
    if not (chart / "Chart.yaml").is_file():
        raise UsageError(f"chart {chart} (apps.{app_name}.chart) has no Chart.yaml")
    set_string = image_values(image, git_sha, extra_set)
    write: Callable[[Entry], object] = record if record is not None else Ledger(target.name, env).append

    def entry(outcome: str, message: str, *, entry_action: str = action, revision: int | None = None) -> Entry:
        return Entry(
            env=target.name,
            app=app_name,
            action=entry_action,
            outcome=outcome,
            digest=image.digest,
            tag=image.tag,
            commit=git_sha,
            release=f"{app.release}" + (f"@{revision}" if revision else ""),
            message=message,
        )

    started = time.monotonic()
    with kube.access(target.config, target.name, target.runner.redactor) as access:
        client = helm.Helm.detect(target.runner, access)
        # Validate before anything changes (and before waiting for the lock): values the schema
        # rejects fail here with exit 2, and no release revision is created.
        with target.reporter.phase("rendering the chart"):
            client.template(
                release=app.release, chart=chart, namespace=namespace, values_files=[values_file], set_string=set_string
            )
        with _locked(target, app_name, lock_held, lock_timeout):
            recovered = recover_pending(target, client, access, app_name, app.release, namespace, write)
            with target.reporter.phase(f"helm {client.major} upgrade --install {app.release} ({image.pinned})"):
                try:
                    release = client.upgrade(
                        release=app.release,
                        chart=chart,
                        namespace=namespace,
                        values_files=[values_file],
                        set_string=set_string,
                        description=f"deployctl {action} {image.tag or image.digest}",
                    )
                except DeployctlError as exc:
                    write(entry("failed", f"helm upgrade failed: {exc.message}"))
                    raise
            verdicts = []
            for name in deployments_in(release.manifest):
                with target.reporter.phase(f"watching the rollout of deployment {name}"):
                    verdict = kube.watch_rollout(
                        access,
                        namespace,
                        name,
                        timeout=max(1.0, rollout_timeout - (time.monotonic() - started)),
                        on_progress=lambda line: target.reporter.progress(f"  {line}"),
                    )
                verdicts.append(verdict)
                if verdict.state != "complete":
                    write(entry("failed", verdict.message, revision=release.revision))
                    raise OperationError(
                        f"rollout of {app_name} to {target.name} failed: {verdict.message}",
                        roll_forward_hint(target.name, env.promote_from is not None),
                        details={
                            "pod": verdict.pod,
                            "container": verdict.container,
                            "reason": verdict.reason,
                            "revision": release.revision,
                            "digest": image.digest,
                        },
                    )
            message = "; ".join(v.message for v in verdicts) or "no deployments in the release"
            write(entry("succeeded", message, revision=release.revision))
    return DeployResult(
        env=target.name,
        app=app_name,
        release=app.release,
        namespace=namespace,
        image=image,
        git_sha=git_sha,
        revision=release.revision,
        helm_version=client.major,
        outcome="succeeded",
        message=message,
        duration_seconds=time.monotonic() - started,
        recovered=recovered,
    )


def image_values(image: ImageRef, git_sha: str | None, extra_set: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``--set-string`` values that pin the image (chart keys, see charts/README.md)."""
    values = {"image.repository": image.name}
    if image.digest:
        values["image.digest"] = image.digest
    if image.tag:
        values["image.tag"] = image.tag
    if git_sha:
        values["build.gitSha"] = git_sha
    values.update(extra_set or {})
    return values


def roll_forward_hint(env_name: str, promoted: bool) -> str:
    how = "promote a new release (`deployctl promote release-X.Y.Z`)" if promoted else f"`deployctl deploy {env_name}`"
    return (
        "nothing was rolled back: the previous pods keep serving. Roll forward: fix the cause, merge it, "
        f"and {how} with the new commit's image"
    )


@contextmanager
def _locked(target: Target, app_name: str, held: bool, timeout: float) -> Iterator[None]:
    if held:
        with nullcontext():
            yield
        return
    from deployctl.lock import EnvironmentLock

    lock = EnvironmentLock(target.name, target.env)
    with lock.hold(
        f"deploy {target.name} --app {app_name}",
        timeout=timeout,
        on_wait=lambda held_by: target.reporter.progress(
            f"waiting for the lock of {target.name}: {held_by.describe()}"
        ),
        on_takeover=lambda stale: target.reporter.warn(f"took over a stale lock of {target.name}: {stale.describe()}"),
    ):
        yield


def recover_pending(
    target: Target,
    client: helm.Helm,
    access: helm.Kube,
    app_name: str,
    release: str,
    namespace: str,
    write: Callable[[Entry], object],
) -> tuple[str, ...]:
    """Make a release left pending-install/-upgrade/-rollback by a killed run deployable again.

    Called only while holding the environment lock, which proves no other deployctl run is
    mid-operation. The pending revision's storage secret (``sh.helm.release.v1.<release>.v<N>``,
    labels owner=helm,status=pending-*) is deleted: helm then sees the last finished revision
    as current and the next upgrade proceeds. Nothing in the cluster is deleted or rolled back:
    the objects of the interrupted revision keep serving until the upgrade replaces them
    (helm adopts objects that carry its release annotations). ``helm rollback`` is not an option
    (policy: roll forward), and ``helm uninstall --keep-history`` for a pending install would
    delete the serving objects.
    """
    current = client.release(release, namespace)
    if current is None or not current.pending:
        return ()
    records = kube.pending_release_records(access, namespace, release)
    if not records:
        raise OperationError(
            f"release {release} is {current.status} at revision {current.revision}, but no pending release "
            f"secret was found in {namespace}",
            "helm may use a non-default storage driver (HELM_DRIVER); recover it by hand",
        )
    done = []
    for record_ in records:
        kube.delete_release_record(access, namespace, record_)
        message = (
            f"release {release} revision {record_.revision} was left {record_.status} by an interrupted run; "
            f"removed its pending record {record_.secret} (cluster objects untouched)"
        )
        target.reporter.warn(message)
        write(
            Entry(
                env=target.name,
                app=app_name,
                action="recover",
                outcome="succeeded",
                release=f"{release}@{record_.revision}",
                message=message,
            )
        )
        done.append(f"{record_.status} revision {record_.revision}")
    return tuple(done)


def deployments_in(manifest: str) -> list[str]:
    """Names of the Deployments in a rendered manifest (multi-document YAML)."""
    names = []
    for doc in yaml.safe_load_all(manifest):
        if isinstance(doc, dict) and doc.get("kind") == "Deployment":
            names.append(str((doc.get("metadata") or {}).get("name", "")))
    return names
