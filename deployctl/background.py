"""Work in a daemon thread that another thread can cancel (helm upgrade while its hooks are watched); a command it
runs through the runner is stopped with it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from deployctl.core.errors import OperationError

T = TypeVar("T")


# The cancellation of the Background (if any) whose thread is running: ProcessRunner.run polls it.
_scope = threading.local()


class CommandCancelledError(OperationError):
    """A command stopped because another thread cancelled its ``Background`` (its process group is gone)."""


class Background(Generic[T]):
    """``fn()`` running in a daemon thread while this one does something else (helm upgrade while its hooks
    are watched). ``cancel`` stops it: a command it runs through a ``ProcessRunner`` has its process group
    terminated and raises CommandCancelledError in that thread; ``result`` re-raises what ``fn`` raised."""

    def __init__(self, fn: Callable[[], T], name: str = "background") -> None:
        self.reason = ""
        self._fn = fn
        self._cancel = threading.Event()
        self._finished = threading.Event()
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        _scope.background = self
        try:
            self._value = self._fn()
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread by result())
            self._error = exc
        finally:
            _scope.background = None
            self._finished.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def error(self) -> BaseException | None:
        """What ``fn`` raised, once done (None while it runs or when it returned)."""
        return self._error if self.done else None

    def wait(self, timeout: float | None = None) -> bool:
        """True once ``fn`` has returned or raised."""
        return self._finished.wait(timeout)

    def cancel(self, reason: str, timeout: float = 15.0) -> None:
        """Stop it (SIGTERM to the running command's group, SIGKILL after 5 s) and wait for the thread."""
        self.reason = reason
        self._cancel.set()
        self._finished.wait(timeout)

    def result(self) -> T:
        """What ``fn`` returned (after ``wait``); raises what it raised."""
        self._finished.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value] # fn returned it (T may be None)


def current() -> Background[object] | None:
    """The Background whose thread calls this (None outside one): ``ProcessRunner.run`` polls its cancellation."""
    found: Background[object] | None = getattr(_scope, "background", None)
    return found
