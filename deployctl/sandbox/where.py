"""Where the sandbox is: its directory and state file for a configuration, the per-user pointer to the one
this user started last, the state file a command means (``locate`` for the commands that only read it,
``locate_own`` for those that change or stop it), and how to print a command that works when pasted
(``command_name``)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from deployctl.config import LoadedConfig
from deployctl.core.errors import UsageError

STATE_FILE = "state.json"
ENV_VAR = "DEPLOYCTL_SANDBOX"
LAST = "the one you started last"  # how ``locate`` names a sandbox it found through the pointer


def sandbox_dir(config: LoadedConfig) -> Path:
    return config.state_dir / "sandbox"


def state_path(config: LoadedConfig) -> Path:
    return sandbox_dir(config) / STATE_FILE


def pointer_path() -> Path:
    """The per-user pointer to the sandbox this user started last (its state file's path)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "deployctl" / "sandbox"


def last_started() -> Path | None:
    """The state file of the sandbox this user started last, while it runs (its state file exists)."""
    try:
        pointed = Path(pointer_path().read_text(encoding="utf-8").strip())
    except OSError:
        return None
    return pointed if pointed.is_file() else None


@dataclass(frozen=True)
class Located:
    """The state file a command means, and how it was found: ``--sandbox``, ``this repository``,
    ``$DEPLOYCTL_SANDBOX``, ``LAST``, or "" (none runs: ``path`` names where the state would be)."""

    path: Path
    found_by: str

    @property
    def guessed(self) -> bool:
        return self.found_by == LAST


def _explicit(explicit: Path) -> Path:
    for candidate in (explicit, explicit / STATE_FILE, explicit / ".deployctl" / "sandbox" / STATE_FILE):
        if candidate.is_file():
            return candidate.resolve()
    raise UsageError(f"--sandbox {explicit}: no sandbox state there", "pass the directory `sandbox up` ran in")


def _chosen(config: LoadedConfig | None, explicit: Path | None) -> Located | None:
    """``--sandbox DIR`` (a state file, a sandbox directory or the repository it was started in), else the
    configuration's own when it runs, else ``$DEPLOYCTL_SANDBOX`` (set by `eval "$(deployctl sandbox env)"`:
    the shell's choice, which every later command follows too)."""
    if explicit is not None:
        return Located(_explicit(explicit), "--sandbox")
    own = state_path(config).resolve() if config is not None else None
    if own is not None and own.is_file():
        return Located(own, "this repository")
    chosen = os.environ.get(ENV_VAR)
    return Located(Path(chosen), f"${ENV_VAR}") if chosen else None


def locate(config: LoadedConfig | None, explicit: Path | None = None) -> Located:
    """The sandbox a command that only reads it means (``status``, ``env``): the one chosen (``_chosen``), else
    the one this user started last, from anywhere (``guessed``: the command says which it found). A path that
    does not exist means: not running there."""
    chosen = _chosen(config, explicit)
    if chosen is not None:
        return chosen
    last = last_started()
    if last is not None:
        return Located(last, LAST)
    return Located(state_path(config).resolve() if config is not None else pointer_path(), "")


def locate_own(config: LoadedConfig | None, explicit: Path | None = None) -> Path:
    """The sandbox a command that changes or stops it means (``down``, ``restart``, ``mark``, ``image``): only
    one chosen (``_chosen``), never a guess. With none chosen, while another sandbox runs (the one this user
    started last, maybe another repository's, with its cluster and ledger), exit 2 naming it and the
    ``--sandbox DIR`` to pass; with none anywhere, or this repository's sandbox directory there (the leftovers
    of an interrupted ``up`` that ``down`` stops), the path of this repository's state (not running)."""
    chosen = _chosen(config, explicit)
    if chosen is not None:
        return chosen.path
    own = state_path(config).resolve() if config is not None else None
    last = last_started()
    if last is None or (own is not None and own.parent.is_dir()):  # its own, maybe left by an interrupted `up`
        return own or pointer_path()
    here = "this repository has no sandbox running" if own is not None else "no sandbox is chosen here"
    directory = shlex.quote(str(last.parent))
    raise UsageError(
        f"{here}; the one you started last is in {directory}, and a sandbox that could be another "
        "repository's is never changed or stopped on a guess",
        f"to act on that one, pass --sandbox {directory} (or run the command in the repository that started it)",
    )


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
