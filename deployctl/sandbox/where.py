"""Where the sandbox is: its directory and state file for a configuration, the per-user pointer to the one
this user started last, the state file a command means (``locate``), and how to print a command that works
when pasted (``command_name``)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

from deployctl.config import LoadedConfig
from deployctl.errors import UsageError

STATE_FILE = "state.json"
ENV_VAR = "DEPLOYCTL_SANDBOX"


def sandbox_dir(config: LoadedConfig) -> Path:
    return config.state_dir / "sandbox"


def state_path(config: LoadedConfig) -> Path:
    return sandbox_dir(config) / STATE_FILE


def pointer_path() -> Path:
    """The per-user pointer to the sandbox this user started last (its state file's path)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "deployctl" / "sandbox"


def locate(config: LoadedConfig | None, explicit: Path | None = None) -> Path:
    """The state file of the sandbox a command means: ``--sandbox DIR`` (a state file, a sandbox directory or
    the repository it was started in), else the configuration's own when it runs, else ``$DEPLOYCTL_SANDBOX``,
    else the one this user started last, from anywhere. A path that does not exist means: not running there."""
    if explicit is not None:
        for candidate in (explicit, explicit / STATE_FILE, explicit / ".deployctl" / "sandbox" / STATE_FILE):
            if candidate.is_file():
                return candidate.resolve()
        raise UsageError(f"--sandbox {explicit}: no sandbox state there", "pass the directory `sandbox up` ran in")
    own = state_path(config).resolve() if config is not None else None
    if own is not None and own.is_file():
        return own
    chosen = os.environ.get(ENV_VAR)
    if chosen:
        return Path(chosen)
    try:
        pointed = Path(pointer_path().read_text(encoding="utf-8").strip())
    except OSError:
        pointed = None
    if pointed is not None and pointed.is_file():
        return pointed
    return own or pointer_path()


def command_name() -> str:
    """How this deployctl is run from the user's shell: ``deployctl`` when that is on PATH, else its full path
    (after ``make setup`` it is in .venv/bin), so printed commands work when pasted."""
    script = Path(sys.executable).parent / "deployctl"
    found = shutil.which("deployctl")
    if found is not None and (not script.is_file() or Path(found).resolve() == script.resolve()):
        return "deployctl"
    return shlex.quote(str(script)) if script.is_file() else f"{shlex.quote(sys.executable)} -m deployctl"


def not_running(path: Path) -> UsageError:
    return UsageError(
        f"the sandbox is not running (no state at {path})",
        f"start it with `{command_name()} sandbox up` in your repository, or pass --sandbox DIR",
    )
