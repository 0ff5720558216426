"""Shared by every test: each test starts with deployctl's logger as Python leaves it, and with a private user
state (no sandbox, pointer or configuration of the user's is ever read or touched)."""

from __future__ import annotations

import itertools
import logging
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

# What deployctl (and the tools it runs: helm, git) read from the user: the per-user sandbox pointer is
# $XDG_STATE_HOME/deployctl/sandbox (``sandbox.where.pointer_path``). XDG_CACHE_HOME and HOME stay: the lab's
# tools are in ~/.cache/deployctl/tools (``sandbox.tools.tools_root``) and git finds its identity in HOME.
PRIVATE = ("XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME")
# GITHUB_EVENT_NAME: a CI run of a pull request would make every `deployctl plan` a pull request's.
CLEARED = ("DEPLOYCTL_SANDBOX", "DEPLOYCTL_CONFIG", "GITHUB_EVENT_NAME")
_numbers = itertools.count()


def _private_user(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    for name in PRIVATE:
        monkeypatch.setenv(name, str(home / name.lower()))
    for name in CLEARED:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session", autouse=True)
def _ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in a terminal. A shell starts a background job (`make test &`, nohup)
    with SIGINT ignored, and Python then leaves it ignored: the tests that interrupt a run (SIGINT to
    themselves, a lost lease interrupting its holder) would see nothing happen. deployctl itself leaves an
    inherited ignore alone (`lease._ctrl_c_raises`: its writes are fenced either way)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="session", autouse=True)
def _private_user_state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private XDG state, config and data home for the session (what session and module fixtures see: a
    lab, a sandbox a module starts), and no $DEPLOYCTL_SANDBOX or $DEPLOYCTL_CONFIG of the user's shell."""
    home = tmp_path_factory.mktemp("user")
    with pytest.MonkeyPatch.context() as monkeypatch:
        _private_user(monkeypatch, home)
        yield home


@pytest.fixture(autouse=True)
def _private_user_state_per_test(_private_user_state: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test its own (created on first use): a sandbox pointer one test writes is never another's."""
    _private_user(monkeypatch, _private_user_state / f"test-{next(_numbers)}")


@pytest.fixture(autouse=True)
def _fresh_deployctl_logger() -> Iterator[None]:
    """`deployctl` (the CLI's main) points its logger at a console of its own and stops propagation; a test
    that ran it must not hide later tests' log records from pytest's caplog."""
    yield
    logger = logging.getLogger("deployctl")
    logger.handlers.clear()
    logger.propagate = True
    logger.setLevel(logging.NOTSET)
