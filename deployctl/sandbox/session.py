"""The ``deployctl sandbox up|down|status|env|mark|restart`` use cases: a detached lab for the repository.

``up`` starts the lab's services in their own sessions (they outlive the CLI process) and writes
``<state_dir>/sandbox/state.json`` (pids, ports, endpoints, logs), and a per-user pointer to it
(``$XDG_STATE_HOME/deployctl/sandbox``), so ``status`` and ``env`` find it from any directory (``locate``);
``mark``, ``restart`` and ``down`` act only on a sandbox chosen, never on that guess (``locate_own``). ``env``
prints the exports that make later commands use it: ``DEPLOYCTL_SANDBOX`` names the state file, and ``cli``
then loads the configuration with ``overrides_from_state`` merged over ``[tool.deployctl]``, which also creates
that configuration's state buckets in the sandbox on first use.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from deployctl import runner
from deployctl.config import DeployctlConfig, LoadedConfig
from deployctl.core.errors import OperationError, UsageError
from deployctl.sandbox import http_standin
from deployctl.sandbox.lab import COMPONENTS, Lab
from deployctl.sandbox.procfs import groups_with_cwd
from deployctl.sandbox.where import (
    ENV_VAR,
    command_name,
    locate_own,
    not_running,
    pointer_path,
    sandbox_dir,
    state_path,
)
from deployctl.terraform import state_bucket


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    healthy: bool
    endpoint: str
    pid: int
    log: str


@dataclass(frozen=True)
class SandboxStatus:
    running: bool
    state_file: str
    components: tuple[ComponentStatus, ...]
    moto_url: str | None = None
    registries: tuple[str, ...] = ()
    kubeconfig: str | None = None
    started_in_seconds: float | None = None
    message: str = ""
    command: str = "sandbox status"

    @property
    def healthy(self) -> bool:
        return self.running and all(c.healthy for c in self.components)

    def data(self) -> Mapping[str, Any]:
        return {
            "running": self.running,
            "healthy": self.healthy,
            "state_file": self.state_file,
            "moto_url": self.moto_url,
            "registries": list(self.registries),
            "kubeconfig": self.kubeconfig,
            "started_in_seconds": self.started_in_seconds,
            "components": [vars(c) for c in self.components],
            "message": self.message,
        }

    def text(self) -> Sequence[str]:
        if not self.running:
            return [self.message or f"sandbox: not running (start it with `{command_name()} sandbox up`)"]
        lines = [self.message] if self.message else []
        lines.append(f"sandbox: {'healthy' if self.healthy else 'UNHEALTHY'} (state: {self.state_file})")
        for c in self.components:
            lines.append(f"  {'ok ' if c.healthy else 'BAD'} {c.name:<24} {c.endpoint}")
        if not self.healthy:
            lines.append("  logs: " + ", ".join(c.log for c in self.components if not c.healthy))
        lines.append(f'use it: eval "$({command_name()} sandbox env)"')
        return lines


@dataclass(frozen=True)
class SandboxDown:
    stopped: tuple[str, ...]
    removed: str | None
    command: str = "sandbox down"

    def data(self) -> Mapping[str, Any]:
        return {"stopped": list(self.stopped), "removed": self.removed}

    def text(self) -> Sequence[str]:
        if not self.stopped and self.removed is None:
            return ["sandbox: was not running"]
        return [
            f"sandbox: stopped {len(self.stopped)} services" + (f", removed {self.removed}" if self.removed else "")
        ]


@dataclass(frozen=True)
class SandboxEnv:
    variables: Mapping[str, str]
    command: str = "sandbox env"

    def data(self) -> Mapping[str, Any]:
        return {"env": dict(self.variables)}

    def text(self) -> Sequence[str]:
        # Static keys in the caller's shell would win over the sandbox's credentials file.
        lines = ["unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN"]
        return lines + [f"export {key}={shlex.quote(value)}" for key, value in self.variables.items()]


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise OperationError(f"{path}: unreadable sandbox state: {exc}", "run `deployctl sandbox down`") from None
    return data if isinstance(data, dict) else None


def _status_of(lab: Lab, path: Path, message: str = "", started: float | None = None) -> SandboxStatus:
    health = lab.status()
    components = tuple(
        ComponentStatus(name, health.get(name, False), s.endpoint, s.pid, s.log) for name, s in lab.services.items()
    )
    return SandboxStatus(
        running=True,
        state_file=str(path),
        components=components,
        moto_url=lab.moto_url if "moto" in lab.services else None,
        registries=tuple(lab.registry_hosts),
        kubeconfig=str(lab.kubeconfig) if "kube-apiserver" in lab.services else None,
        started_in_seconds=started,
        message=message,
    )


def status(path: Path) -> SandboxStatus:
    data = read_state(path)
    if data is None:
        message = f"sandbox: not running (no state at {path}; start it with `{command_name()} sandbox up`)"
        return SandboxStatus(False, str(path), (), message=message)
    return _status_of(Lab.from_state(data), path)


def up(
    config: LoadedConfig,
    *,
    components: Sequence[str] = COMPONENTS,
    registries: int = 2,
    progress: Callable[[str], None] | None = None,
) -> SandboxStatus:
    """Start the lab detached (idempotent: a healthy running sandbox is left as it is).

    The state file is written only once every component is healthy; when any step fails, everything
    started is stopped and no state file remains (the logs stay for the error to point at)."""
    path = state_path(config)
    existing = read_state(path)
    if existing is not None:
        current = _status_of(Lab.from_state(existing), path, "sandbox: already running")
        if current.healthy:
            _point_at(path)
            return replace(current, command="sandbox up")
        Lab.from_state(existing).stop(check=False)  # half-dead: start over
    directory = sandbox_dir(config)
    _stop_leftovers(directory)
    shutil.rmtree(directory, ignore_errors=True)
    started = time.monotonic()
    lab = Lab(state_dir=directory, registries=registries)
    several = any(len(env.clusters) > 1 for env in config.settings.environments.values())
    if several and "cluster" in components:  # an environment with several clusters: a second control plane
        components = (*components, "cluster2")
        registries = max(registries, 3)  # and a registry for each cluster that has its own
    try:
        lab.start(components, registries=registries, progress=progress)
        _save(lab, path)
        if "moto" in lab.services:
            ensure_state_buckets(path, config.settings)
        _point_at(path)
    except BaseException:
        lab.stop(check=False)
        path.unlink(missing_ok=True)
        raise
    return replace(
        _status_of(lab, path, "sandbox: started", round(time.monotonic() - started, 1)), command="sandbox up"
    )


def _point_at(path: Path) -> None:
    pointer = pointer_path()
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(f"{path.resolve()}\n", encoding="utf-8")


def _stop_leftovers(directory: Path) -> list[int]:
    """Stop the services an interrupted ``up`` (killed before it wrote the state) left running: every
    lab service runs in its own process group with the sandbox directory as its working directory."""
    groups = [group for group in groups_with_cwd(directory) if group != os.getpgrp()]
    for group in groups:
        runner.terminate_group(group, grace=5)
    return groups


def _save(lab: Lab, path: Path, keep: Mapping[str, Any] | None = None) -> None:
    """Write the lab's state (keeping the buckets a previous state recorded)."""
    buckets = {"state_buckets": list(keep["state_buckets"])} if keep and "state_buckets" in keep else {}
    _write(path, {**lab.state(), **buckets})


def _write(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    temporary.replace(path)


def bootstrap_state_buckets(lab: Lab, settings: DeployctlConfig) -> list[str]:
    """``settings``' state buckets in ``lab``'s moto, for a lab without a state file (bench, tests)."""
    buckets = _backends(settings)
    _create_buckets(lab.moto_url, buckets)
    return sorted(buckets)


def _backends(settings: DeployctlConfig) -> dict[str, tuple[str, int]]:
    """Each state bucket of ``settings`` -> its region and Object Lock retention (the longest asked for)."""
    found: dict[str, tuple[str, int]] = {}
    for env in settings.environments.values():
        if env.terraform is not None:
            backend = env.terraform.backend
            days = max(backend.retention_days, found.get(backend.bucket, ("", 0))[1])
            found[backend.bucket] = (backend.region, days)
    return found


def _create_buckets(moto_url: str, buckets: Mapping[str, tuple[str, int]]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto's documented fake credentials)
    )
    for bucket, (region, retention_days) in buckets.items():
        state_bucket.ensure(s3, bucket, region, retention_days)


def ensure_state_buckets(path: Path, settings: DeployctlConfig) -> list[str]:
    """Create the state buckets of ``settings``' environments in the sandbox of ``path`` (versioned, encrypted,
    public access blocked, Object Lock: what `deployctl bootstrap ENV` does in an account) unless the state says
    they exist: any configuration pointed at the sandbox gets its backend, not only the one it was started from."""
    data = read_state(path)
    if data is None or not data.get("moto_url"):
        return []
    backends = _backends(settings)
    missing = sorted(set(backends) - set(data.get("state_buckets", [])))
    if not missing:
        return []
    _create_buckets(data["moto_url"], {bucket: backends[bucket] for bucket in missing})
    data = read_state(path) or data  # another command may have added some meanwhile
    data["state_buckets"] = sorted({*data.get("state_buckets", []), *missing})
    _write(path, data)
    return missing


@dataclass(frozen=True)
class SandboxMark:
    marker: str
    behaviour: str
    state_file: str
    command: str = "sandbox mark"

    def data(self) -> Mapping[str, Any]:
        return {"marker": self.marker, "behaviour": self.behaviour, "state_file": self.state_file}

    def text(self) -> Sequence[str]:
        return [f"sandbox: new pods of images containing {self.marker} now {self.behaviour} (roll out to see it)"]


def mark_image(
    config: LoadedConfig | None, marker: str, behaviour: str = "crashloop", *, sandbox: Path | None = None
) -> SandboxMark:
    """Make the running sandbox's pods of images matching ``marker`` (e.g. a digest) fail as ``behaviour``."""
    path = locate_own(config, sandbox)
    data = read_state(path)
    if data is None:
        raise not_running(path)
    lab = Lab.from_state(data)
    if "kwok" not in lab.services:
        raise UsageError(f"the sandbox at {path} has no cluster", "start one with `deployctl sandbox up` (all parts)")
    lab.mark_image(marker, behaviour)
    _save(lab, path, keep=data)
    return SandboxMark(marker, behaviour, str(path))


@dataclass(frozen=True)
class SandboxRestart:
    component: str
    pid: int
    endpoint: str
    state_file: str
    command: str = "sandbox restart"

    def data(self) -> Mapping[str, Any]:
        return {"component": self.component, "pid": self.pid, "endpoint": self.endpoint, "state_file": self.state_file}

    def text(self) -> Sequence[str]:
        where = f" at {self.endpoint}" if self.endpoint else ""
        return [f"sandbox: {self.component} restarted{where} (pid {self.pid})"]


def restart(config: LoadedConfig | None, name: str, *, sandbox: Path | None = None) -> SandboxRestart:
    """Restart one component of the running sandbox on its ports, keeping its data (see ``Lab.restart``)."""
    path = locate_own(config, sandbox)
    data = read_state(path)
    if data is None:
        raise not_running(path)
    lab = Lab.from_state(data)
    if name not in lab.services:
        raise UsageError(
            f"the sandbox has no component {name!r}", f"one of: {', '.join(lab.services)} (`deployctl sandbox status`)"
        )
    try:
        service = lab.restart(name)
    finally:
        _save(lab, path, keep=data)  # the new PID, even when it did not become ready (`sandbox down` stops it)
    return SandboxRestart(name, service.pid, service.endpoint, str(path))


def down(path: Path, config: LoadedConfig | None = None) -> SandboxDown:
    """Stop the sandbox of ``path`` and remove its directory (with the configuration's own, the leftovers of an
    interrupted ``up`` too)."""
    data = read_state(path)
    directories = [Path(data["state_dir"])] if data is not None else []
    if config is not None and (path == state_path(config).resolve() or not state_path(config).is_file()):
        directories.append(sandbox_dir(config))  # its own: an interrupted `up` may have left processes there
    stopped: tuple[str, ...] = ()
    if data is not None:
        lab = Lab.from_state(data)
        stopped = tuple(lab.services)
        lab.stop()
    removed = None
    for directory in dict.fromkeys(d.resolve() for d in directories):
        stopped += tuple(f"leftover process group {group}" for group in _stop_leftovers(directory))
        if directory.exists():
            shutil.rmtree(directory)
            removed = str(directory) if removed is None else f"{removed}, {directory}"
    try:
        if Path(pointer_path().read_text(encoding="utf-8").strip()) == path.resolve():
            pointer_path().unlink()
    except OSError:
        pass  # no pointer, or one to another sandbox: left as it is
    return SandboxDown(stopped, removed)


def env(path: Path, config: LoadedConfig | None) -> SandboxEnv:
    """The exports for ``eval``; the configuration found here (if any) gets its state buckets now."""
    data = read_state(path)
    if data is None:
        raise not_running(path)
    if config is not None:
        ensure_state_buckets(path, config.settings)
    variables = {**Lab.from_state(data).shell_env(), ENV_VAR: str(path.resolve())}
    return SandboxEnv(variables)


def guard_exports(path: Path) -> list[str]:
    """What a failed ``sandbox env`` prints for ``eval``: ``DEPLOYCTL_SANDBOX`` set to the missing state, so the
    next commands refuse (exit 2) instead of reaching real AWS with the shell's credentials."""
    return [f"export {ENV_VAR}={shlex.quote(str(path))}"]


def overrides_from_state(state_file: Path, settings: DeployctlConfig) -> dict[str, Any]:
    """The config overrides that point ``settings``' environments at the sandbox in ``state_file`` (whose
    moto gets their state buckets on first use)."""
    data = read_state(state_file)
    if data is None:
        raise UsageError(
            f"${ENV_VAR} names {state_file}, which does not exist (the sandbox is down)",
            f"start it with `{command_name()} sandbox up`, or `unset {ENV_VAR}`",
        )
    ensure_state_buckets(state_file, settings)
    lab = Lab.from_state(data)
    http_standin.serve_environments(lab, settings)  # the HTTP stand-in answers for their Services
    return lab.config_overrides(settings)
