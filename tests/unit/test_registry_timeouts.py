"""A registry that stops answering (issue 13, item 4): an operation gives up within its bound, every retry is
said (the ``deployctl.adapters.registry`` logger at WARNING, which the console prints on stderr), the error names the
registry and the step, and the rest of the run does not wait on that registry again.

The registry here is a socket server that accepts connections and never answers: an injected failure, the
same thing a stopped registry does to a client (tests/lab/test_hung_dependencies.py stops a real registry
with SIGSTOP). The retry arithmetic is checked on a fake clock."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from deployctl.adapters import registry
from deployctl.adapters.registry import retry

SMALL = registry.RetryPolicy(attempts=3, base_delay=0.1, max_delay=0.2, connect_timeout=0.5, read_timeout=0.5)


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def said() -> Iterator[list[str]]:
    """What the registry package said at WARNING (its own logger: the CLI's setup stops propagation)."""
    handler = Lines()
    logger = logging.getLogger("deployctl.adapters.registry")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def silent_registry() -> Iterator[str]:
    """``host:port`` of a server that accepts every connection and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()


class Clock:
    """time.monotonic and time.sleep for ``retry``: a hung try advances the clock by its read timeout."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def hung(clock: Clock, policy: registry.RetryPolicy, tries: list[float]) -> None:
    tries.append(clock.now)
    clock.now += policy.read_timeout
    raise registry.TransientError(
        "HEAD r.example/v2/api/manifests/v1: no answer", host="r.example", state="not answering"
    )


def test_the_deadline_stops_new_tries_of_a_hung_registry(monkeypatch: pytest.MonkeyPatch, said: list[str]) -> None:
    clock = Clock()
    monkeypatch.setattr(retry, "time", clock)
    policy = registry.RetryPolicy()  # the defaults: what the README's bound is computed from
    tries: list[float] = []
    with pytest.raises(registry.RegistryError) as caught:
        registry.with_retries("resolve api:v1", policy, lambda: hung(clock, policy, tries))
    assert tries == [0.0, 11.0, 23.0], "three tries of 10 s, 1 s and 2 s apart; a fourth could end after 40 s"
    assert clock.now == 33.0 <= policy.deadline
    assert said == [
        "registry r.example not answering, retry 2/4 in 1 s: resolve api:v1 (HEAD r.example/v2/api/manifests/v1: "
        "no answer)",
        "registry r.example not answering, retry 3/4 in 2 s: resolve api:v1 (HEAD r.example/v2/api/manifests/v1: "
        "no answer)",
    ]
    error = caught.value
    assert error.message.startswith("registry r.example not answering: resolve api:v1 gave up after 3 attempts in 33 s")
    assert error.hint is not None and "check that the registry r.example is up" in error.hint
    assert error.details == {
        "dependency": "registry r.example",
        "dependency_state": "not answering",
        "step": "resolve api:v1",
        "tries": 3,
        "seconds": 33.0,
    }


def test_a_blob_copy_is_bounded_by_tries_not_by_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(retry, "time", clock)
    policy = registry.RetryPolicy()
    tries: list[float] = []
    with pytest.raises(registry.RegistryError, match="gave up after 4 attempts"):
        registry.with_retries("copy blob", policy, lambda: hung(clock, policy, tries), deadline=False)
    assert len(tries) == policy.attempts


def test_a_silent_registry_fails_within_its_bound_and_gets_one_try_afterwards(
    silent_registry: str, said: list[str]
) -> None:
    oci = registry.OciRegistry(silent_registry, policy=SMALL)
    started = time.monotonic()
    with pytest.raises(registry.RegistryError) as caught:
        oci.resolve("api", "v1")
    took = time.monotonic() - started
    assert took < 3 * (SMALL.read_timeout + SMALL.connect_timeout) + 1, took
    message = caught.value.message
    assert message.startswith(f"registry {silent_registry} not answering: resolve api:v1 gave up after 3 attempts")
    assert "no answer within 0.5 s" in message
    assert [line.split(": ")[0] for line in said] == [
        f"registry {silent_registry} not answering, retry 2/3 in 0.1 s",
        f"registry {silent_registry} not answering, retry 3/3 in 0.2 s",
    ]

    started = time.monotonic()
    with pytest.raises(registry.RegistryError) as again:
        oci.get_manifest("api", "v2")
    assert time.monotonic() - started < SMALL.try_seconds + 0.5, "one try, no retries"
    assert again.value.message.startswith(
        f"registry {silent_registry} not answering: get manifest api@v2 (one try: the registry stopped answering "
        "earlier in this run) gave up after 1 attempt"
    )
    assert len(said) == 2, "no new retries"


def test_a_registry_that_refuses_connections_is_not_reachable(said: list[str]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{probe.getsockname()[1]}"  # bound, not listening: connections are refused
        with pytest.raises(registry.RegistryError) as caught:
            registry.OciRegistry(host, policy=SMALL).resolve("api", "v1")
    assert caught.value.message.startswith(f"registry {host} not reachable: resolve api:v1 gave up after 3 attempts")
    assert "Connection refused" in caught.value.message
    assert len(said) == 2
