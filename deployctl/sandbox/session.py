"""The ``deployctl sandbox up|down|status|env`` use cases: a detached lab for the repository.

``up`` starts the lab's services in their own sessions (they outlive the CLI process) and writes
``<state_dir>/sandbox/state.json`` (pids, ports, endpoints, logs). ``env`` prints the exports that
make later commands use it: ``DEPLOYCTL_SANDBOX`` names the state file, and ``cli`` then loads the
configuration with ``overrides_from_state`` merged over ``[tool.deployctl]``.
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
from deployctl.errors import OperationError, UsageError
from deployctl.sandbox.lab import COMPONENTS, Lab
from deployctl.sandbox.processes import groups_with_cwd

STATE_FILE = "state.json"
ENV_VAR = "DEPLOYCTL_SANDBOX"


def sandbox_dir(config: LoadedConfig) -> Path:
    return config.state_dir / "sandbox"


def state_path(config: LoadedConfig) -> Path:
    return sandbox_dir(config) / STATE_FILE


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
            return [self.message or "sandbox: not running (start it with `deployctl sandbox up`)"]
        lines = [self.message] if self.message else []
        lines.append(f"sandbox: {'healthy' if self.healthy else 'UNHEALTHY'} (state: {self.state_file})")
        for c in self.components:
            lines.append(f"  {'ok ' if c.healthy else 'BAD'} {c.name:<24} {c.endpoint}")
        if not self.healthy:
            lines.append("  logs: " + ", ".join(c.log for c in self.components if not c.healthy))
        lines.append('use it: eval "$(deployctl sandbox env)"')
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


def _read_state(path: Path) -> dict[str, Any] | None:
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


def status(config: LoadedConfig) -> SandboxStatus:
    path = state_path(config)
    data = _read_state(path)
    if data is None:
        return SandboxStatus(
            False, str(path), (), message="sandbox: not running (start it with `deployctl sandbox up`)"
        )
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
    existing = _read_state(path)
    if existing is not None:
        current = _status_of(Lab.from_state(existing), path, "sandbox: already running")
        if current.healthy:
            return replace(current, command="sandbox up")
        Lab.from_state(existing).stop(check=False)  # half-dead: start over
    directory = sandbox_dir(config)
    _stop_leftovers(directory)
    shutil.rmtree(directory, ignore_errors=True)
    started = time.monotonic()
    lab = Lab(state_dir=directory, registries=registries)
    try:
        lab.start(components, progress=progress)
        if "moto" in lab.services:
            bootstrap_state_buckets(lab, config.settings)
        _save(lab, path)
    except BaseException:
        lab.stop(check=False)
        path.unlink(missing_ok=True)
        raise
    return replace(
        _status_of(lab, path, "sandbox: started", round(time.monotonic() - started, 1)), command="sandbox up"
    )


def _stop_leftovers(directory: Path) -> list[int]:
    """Stop the services an interrupted ``up`` (killed before it wrote the state) left running: every
    lab service runs in its own process group with the sandbox directory as its working directory."""
    groups = [group for group in groups_with_cwd(directory) if group != os.getpgrp()]
    for group in groups:
        runner.terminate_group(group, grace=5)
    return groups


def _save(lab: Lab, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(lab.state(), indent=2) + "\n")
    temporary.replace(path)


def bootstrap_state_buckets(lab: Lab, settings: DeployctlConfig) -> list[str]:
    """Create every environment's state bucket (versioned) in moto: the bootstrap step a real account
    does once by hand or with a bootstrap stack, since terraform cannot create its own backend."""
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=lab.moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106 (moto's documented fake credentials)
    )
    buckets = sorted({e.terraform.backend.bucket for e in settings.environments.values() if e.terraform})
    for bucket in buckets:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return buckets


def mark_image(config: LoadedConfig, marker: str, behaviour: str = "crashloop") -> None:
    """Make the running sandbox's pods of images matching ``marker`` (e.g. a digest) fail."""
    path = state_path(config)
    data = _read_state(path)
    if data is None:
        raise UsageError("the sandbox is not running", "start it first: deployctl sandbox up")
    lab = Lab.from_state(data)
    lab.mark_image(marker, behaviour)
    _save(lab, path)


def down(config: LoadedConfig) -> SandboxDown:
    path = state_path(config)
    data = _read_state(path)
    directory = sandbox_dir(config)
    stopped: tuple[str, ...] = ()
    if data is not None:
        lab = Lab.from_state(data)
        stopped = tuple(lab.services)
        lab.stop()
    stopped += tuple(f"leftover process group {group}" for group in _stop_leftovers(directory))
    removed = None
    if directory.exists():
        shutil.rmtree(directory)
        removed = str(directory)
    return SandboxDown(stopped, removed)


def env(config: LoadedConfig) -> SandboxEnv:
    path = state_path(config)
    data = _read_state(path)
    if data is None:
        raise UsageError("the sandbox is not running", "start it first: deployctl sandbox up")
    variables = {**Lab.from_state(data).shell_env(), ENV_VAR: str(path.resolve())}
    return SandboxEnv(variables)


def overrides_from_state(state_file: Path, settings: DeployctlConfig) -> dict[str, Any]:
    """The config overrides that point ``settings``' environments at the sandbox in ``state_file``."""
    data = _read_state(state_file)
    if data is None:
        raise UsageError(
            f"${ENV_VAR} names {state_file}, which does not exist (the sandbox is down)",
            f"start it with `deployctl sandbox up`, or `unset {ENV_VAR}`",
        )
    return Lab.from_state(data).config_overrides(settings)
