"""Rollouts in threads that stop together (issue 25): ``run`` calls ``fn`` for each item, each in a thread of its
own (at most ``workers`` at once), and returns every outcome in order. ``levels`` runs a level's apps with it,
``waves`` a wave's clusters (and each cluster's levels nest inside).

SIGINT and SIGTERM (the CLI turns SIGTERM into KeyboardInterrupt) reach the main thread only. While the caller
waits here, an interrupt is forwarded to every item still running, as if each ran alone in the main thread: a
rollout stops its helm and completes its intent (``app.steps.rollout.roll_out``). Items not yet started never start. The
caller then waits at most ``STOP_SECONDS`` for them and lets the interrupt go on, so the lock is released and the
process exits 130 within seconds even when one of them cannot stop (its intent stays open; the next run settles
it from helm's history). Threads are daemons: one stuck in a call cannot keep the process alive.
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from deployctl.core.errors import DeployctlError

log = logging.getLogger(__name__)

K = TypeVar("K")
T = TypeVar("T")
# A rollout stops within about 5 s (its helm gets SIGTERM, SIGKILL 5 s later; runner.terminate), then writes one
# ledger entry: the bound leaves room for that and keeps the exit well within 10 s.
STOP_SECONDS = 8.0
POLL = 0.1  # the caller's waits are this short: an interrupt forwarded to it (when it is a worker) lands at once


def run(
    items: Sequence[K],
    fn: Callable[[K], T],
    *,
    workers: int | None = None,
    name: str = "worker",
    stop_seconds: float | None = None,
) -> list[T | DeployctlError]:
    """``fn`` of each item, in order: what it returned, or the DeployctlError it raised. One item runs in this
    thread (Ctrl-C reaches it directly). Anything else a worker raises is raised here once every item is done."""
    if len(items) == 1:
        try:
            return [fn(items[0])]
        except DeployctlError as exc:
            return [exc]
    pool = _Pool(items, fn, workers or len(items), name)
    try:
        pool.start()
        pool.wait()
    except KeyboardInterrupt:
        pool.interrupt()
        bound = STOP_SECONDS if stop_seconds is None else stop_seconds
        if not pool.wait(bound):
            log.warning(
                "%d of the rollouts in progress did not stop within %gs of the interrupt; the next run settles "
                "what they left open",
                pool.running(),
                bound,
            )
        raise
    return pool.results()


class _Pool(Generic[K, T]):
    def __init__(self, items: Sequence[K], fn: Callable[[K], T], workers: int, name: str) -> None:
        self._items = list(items)
        self._fn = fn
        self._lock = threading.Lock()
        self._next = 0
        self._stopping = False
        self._running: dict[int, int] = {}  # item index -> the thread running it
        self._outcomes: dict[int, T | BaseException] = {}
        # Set while its thread is not running (never started, or ended). Not Thread.join/is_alive: in Python 3.11 a
        # KeyboardInterrupt that lands in join() marks a thread that still runs as stopped (bpo-45274's fix).
        self._ended = [threading.Event() for _ in range(min(max(workers, 1), len(self._items)))]
        for ended in self._ended:
            ended.set()
        self._threads = [
            threading.Thread(target=self._work, args=(ended,), name=f"{name}-{i}", daemon=True)
            for i, ended in enumerate(self._ended)
        ]

    def start(self) -> None:
        for thread, ended in zip(self._threads, self._ended, strict=True):
            ended.clear()
            thread.start()

    def _take(self) -> int | None:
        with self._lock:
            if self._stopping or self._next >= len(self._items):
                return None
            index, self._next = self._next, self._next + 1
            self._running[index] = threading.get_ident()
            return index

    def _work(self, ended: threading.Event) -> None:
        try:
            while (index := self._take()) is not None:
                try:
                    outcome: T | BaseException = self._fn(self._items[index])
                except BaseException as exc:  # noqa: BLE001 (a failure, a forwarded interrupt: results() sorts them)
                    outcome = exc
                finally:
                    with self._lock:
                        self._running.pop(index, None)
                self._outcomes[index] = outcome
        except KeyboardInterrupt:  # forwarded just as this thread finished its item: nothing of it left to stop
            return
        finally:
            ended.set()

    def wait(self, timeout: float | None = None) -> bool:
        """True once every thread has ended; False when ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for ended in self._ended:
            while not ended.is_set():
                left = POLL if deadline is None else min(POLL, deadline - time.monotonic())
                if left <= 0:
                    return False
                ended.wait(left)
        return True

    def interrupt(self) -> None:
        """No item starts from now on; each running one gets a KeyboardInterrupt in its thread (raised there at
        its next Python instruction: a call into C, such as a blocking read, finishes first)."""
        with self._lock:
            self._stopping = True
            for ident in self._running.values():
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), ctypes.py_object(KeyboardInterrupt))

    def running(self) -> int:
        with self._lock:
            return len(self._running)

    def results(self) -> list[T | DeployctlError]:
        found: list[T | DeployctlError] = []
        for index in range(len(self._items)):
            outcome = self._outcomes[index]
            if isinstance(outcome, BaseException) and not isinstance(outcome, DeployctlError):
                raise outcome
            found.append(outcome)
        return found
