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
from deployctl.core.errors import UsageError
from deployctl.sandbox import http_standin
from deployctl.sandbox.lab import COMPONENTS, Lab
from deployctl.sandbox.procfs import groups_with_cwd
from deployctl.sandbox.state_buckets import ensure_state_buckets
from deployctl.sandbox.state_file import read_state, write_state
from deployctl.sandbox.where import (
    ENV_VAR,
    command_name,
    not_running,
    pointer_path,
    sandbox_dir,
    state_path,
)


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
        save_lab_state(lab, path)
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


def save_lab_state(lab: Lab, path: Path, keep: Mapping[str, Any] | None = None) -> None:
    """Write the lab's state (keeping the buckets a previous state recorded)."""
    buckets = {"state_buckets": list(keep["state_buckets"])} if keep and "state_buckets" in keep else {}
    write_state(path, {**lab.state(), **buckets})


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
