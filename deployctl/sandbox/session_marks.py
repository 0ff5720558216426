"""What a running sandbox is told: an image digest marked to crash (or answer 500), a service restarted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployctl.config import LoadedConfig
from deployctl.core.errors import UsageError
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.session import save_lab_state
from deployctl.sandbox.state_file import read_state
from deployctl.sandbox.where import (
    locate_own,
    not_running,
)


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
    save_lab_state(lab, path, keep=data)
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
        save_lab_state(lab, path, keep=data)  # the new PID, even when it did not become ready (`sandbox down` stops it)
    return SandboxRestart(name, service.pid, service.endpoint, str(path))
