"""The lab's processes: each service in its own process group with its log, readiness probes,
stopping whole groups, and the port and /proc helpers they need."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl import runner
from deployctl.core.errors import OperationError
from deployctl.sandbox.ports import ATTEMPT_HEADER, ClientCert, attempt_output, free_port, http_ok, port_open, tail
from deployctl.sandbox.procfs import listening_ports, processes_in_groups, start_time

log = logging.getLogger(__name__)

# A service started with a picked port that something else took meanwhile exits with one of these
# (Go's net.Listen, Python's socket, werkzeug). The exit code says nothing more specific, so the log
# is the only signal; tests/lab/test_lab_ports.py pins it for the tools that use picked ports.
ADDRESS_IN_USE = re.compile(r"address already in use|is in use by another program", re.IGNORECASE)
# Every service that exits during start-up starts again, this many times in all: with new ports when its
# port was taken, as it was otherwise (kwok v0.8.0 once panicked during start-up, issue 24).
START_ATTEMPTS = 4


class LabError(OperationError):
    """A lab service did not start, or did not stop cleanly."""


@dataclass
class Service:
    """One process of the lab."""

    name: str
    pid: int
    ports: list[int]
    log: str
    endpoint: str
    probe: str  # "http", "https" or "tcp" (what ``healthy`` checks)
    probe_path: str = "/"
    attempts: int = 1  # how many starts it took (more than one: a picked port was taken)
    # What ``restart`` runs again: the argv with the ports it serves on (port 0 replaced by the port it got),
    # and the environment variables it was given on top of the caller's.
    argv: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    started: int | None = None  # the leader's start time: with ``pid``, which process is the service

    def is_running(self) -> bool:
        """Whether ``pid`` is still this service's process (not a PID reused by another one since)."""
        now = start_time(self.pid)
        return now is not None and (self.started is None or now == self.started) and runner.pid_alive(self.pid)

    def healthy(self, ca: Path | None = None, client: ClientCert | None = None) -> bool:
        if not self.is_running():
            return False
        if self.probe == "tcp":
            return all(port_open(p) for p in self.ports)
        return http_ok(self.ports[0], self.probe_path, tls=self.probe == "https", ca=ca, client=client)


@dataclass(frozen=True)
class Launch:
    """How to start one service. ``command`` and ``endpoint`` take the service's ports: picked by the
    lab right before each attempt, or (``port_zero``) bound by the service itself on port 0 and read
    back from /proc once it listens, so a port taken meanwhile cannot fail the start."""

    name: str
    command: Callable[[list[int]], Sequence[str | Path]]
    endpoint: Callable[[list[int]], str]
    probe: str  # "http", "https" or "tcp"
    probe_path: str = "/"
    ports: int = 1
    port_zero: bool = False  # ``command([])`` binds port 0; ``command(ports)`` the ports it got (a restart)
    env: Mapping[str, str] | None = None
    # Called with the picked ports before each attempt (e.g. a kubeconfig that names the port).
    prepare: Callable[[list[int]], None] | None = None


@dataclass
class Processes:
    """The running services of one lab by name, in start order, with logs under ``directory/logs``.

    ``handles`` holds the ``Popen`` of the services this process started; a lab restored from its
    state (another CLI process) stops the others by process group. ``retries`` has one line per start
    attempt that was repeated (a picked port was taken, or the service exited during start-up)."""

    directory: Path
    services: dict[str, Service] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict, repr=False)
    # Looked up when the lab is built (not at import), so a test can occupy the port a start will use.
    pick_port: Callable[[], int] = field(default_factory=lambda: free_port, repr=False)
    retries: list[str] = field(default_factory=list)

    def get(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise LabError(f"lab component {name!r} is not running", "start it: Lab.start([...])") from None

    def start(
        self,
        launches: Sequence[Launch],
        timeout: float,
        *,
        say: Callable[[str], None] = log.info,
        credentials: tuple[Path | None, ClientCert | None] = (None, None),
    ) -> None:
        """``spawn`` the services, then ``settle`` them."""
        self.spawn(launches)
        self.settle(launches, timeout, say=say, credentials=credentials)

    def spawn(self, launches: Sequence[Launch]) -> None:
        """Start each service, right after picking its ports (so they are free a moment ago, not minutes)."""
        for launch in launches:
            self._spawn(launch, attempt=1)

    def settle(
        self,
        launches: Sequence[Launch],
        timeout: float,
        *,
        say: Callable[[str], None] = log.info,
        credentials: tuple[Path | None, ClientCert | None] = (None, None),
    ) -> None:
        """Wait for each spawned service to be ready within ``timeout``; one that exits starts again (with
        new ports when a picked port was taken), at most ``START_ATTEMPTS`` times in all, each retry said
        (``say``) and written to its log. A failure names the service, its log (the last attempt's tail)
        and the retries."""
        for launch in launches:
            self._settle(launch, timeout, say, credentials)

    def _spawn(self, launch: Launch, attempt: int) -> Service:
        ports = [] if launch.port_zero else [self.pick_port() for _ in range(launch.ports)]
        if launch.prepare is not None:
            launch.prepare(ports)
        log_path = self.directory / "logs" / f"{launch.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a", encoding="utf-8") as sink:
            shown = ", ".join(map(str, ports)) or "bound by the service (port 0)"
            sink.write(f"{ATTEMPT_HEADER} {attempt}/{START_ATTEMPTS}, ports: {shown}\n")
        argv = [str(a) for a in launch.command(ports)]
        proc = runner.spawn(argv, log_path=log_path, cwd=self.directory, env=launch.env)
        endpoint = launch.endpoint(ports) if ports else ""
        service = Service(launch.name, proc.pid, ports, str(log_path), endpoint, launch.probe, launch.probe_path)
        service.attempts, service.argv, service.started = attempt, argv, start_time(proc.pid)
        service.env = {k: v for k, v in (launch.env or {}).items() if os.environ.get(k) != v}
        self.services[launch.name] = service
        self.handles[launch.name] = proc
        return service

    def _settle(
        self,
        launch: Launch,
        timeout: float,
        say: Callable[[str], None],
        credentials: tuple[Path | None, ClientCert | None],
    ) -> None:
        while True:
            service = self.services[launch.name]
            exited = self._wait(service, launch, timeout, credentials)
            if not exited:
                return
            output = attempt_output(service.log)
            taken = ADDRESS_IN_USE.search(output)
            if service.attempts >= START_ATTEMPTS:
                raise LabError(self._failure(service, "exited during start-up", taken is not None))
            attempt = f"attempt {service.attempts + 1}/{START_ATTEMPTS}"
            if taken is not None:
                line = (
                    f"{launch.name}: port {', '.join(map(str, service.ports))} was taken before it could bind "
                    f"({taken.group(0)!r}); retrying with new ports ({attempt})"
                )
            else:
                last = output.strip().splitlines()[-1][:200] if output.strip() else "no output"
                line = f"{launch.name} exited during start-up ({last!r}); starting it again ({attempt})"
            self.retries.append(line)
            log.warning("%s", line)
            say(line)
            self.terminate(launch.name)  # reaps the exited leader and anything left in its group
            self._spawn(launch, service.attempts + 1)

    def _wait(
        self, service: Service, launch: Launch, timeout: float, credentials: tuple[Path | None, ClientCert | None]
    ) -> bool:
        """Wait until ``service`` is ready (True when it exited instead)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not runner.pid_alive(service.pid):
                return True
            if not service.ports:  # bound port 0: which port did it get?
                bound = listening_ports(processes_in_groups([service.pid]))
                if len(bound) >= launch.ports:
                    service.ports = bound[: launch.ports]
                    service.endpoint = launch.endpoint(service.ports)
                    service.argv = [str(a) for a in launch.command(service.ports)]
            # Another listener that took a picked port could answer the probe: the port must be ours.
            elif service.healthy(*credentials) and self._owns_ports(service):
                log.debug("%s ready at %s", service.name, service.endpoint)
                return False
            time.sleep(0.1)
        raise LabError(self._failure(service, f"not ready after {timeout:.0f}s", False))

    def restart(
        self, name: str, timeout: float, credentials: tuple[Path | None, ClientCert | None] = (None, None)
    ) -> Service:
        """Stop one service and start it again as it ran, on the same ports (its clients keep their
        addresses) and with the same data; wait until it is ready. A port taken meanwhile is an error."""
        old = self.get(name)
        if not old.argv:
            raise LabError(f"lab component {name} was started by an older deployctl: restart the whole sandbox")
        self.terminate(name)
        log_path = Path(old.log)
        with log_path.open("a", encoding="utf-8") as sink:
            sink.write(f"{ATTEMPT_HEADER} restart, ports: {', '.join(map(str, old.ports))}\n")
        proc = runner.spawn(old.argv, log_path=log_path, cwd=self.directory, env={**os.environ, **old.env})
        service = Service(**{**old.__dict__, "pid": proc.pid, "started": start_time(proc.pid)})
        self.services[name], self.handles[name] = service, proc
        deadline = time.monotonic() + timeout
        while not (service.healthy(*credentials) and self._owns_ports(service)):
            if not runner.pid_alive(proc.pid) or time.monotonic() > deadline:
                taken = ADDRESS_IN_USE.search(attempt_output(old.log)) is not None
                why = "its port was taken by another process" if taken else "it did not become ready"
                raise LabError(f"lab component {name} did not restart: {why}; log: {old.log}\n" + tail(old.log))
            time.sleep(0.1)
        return service

    @staticmethod
    def _owns_ports(service: Service) -> bool:
        return set(service.ports) <= set(listening_ports(processes_in_groups([service.pid])))

    @staticmethod
    def _failure(service: Service, what: str, port_taken: bool) -> str:
        retried = service.attempts - 1
        plural = "retry" if retried == 1 else "retries"
        if port_taken:
            reason = (
                f"could not bind: its picked port was taken on all {service.attempts} attempts "
                f"({retried} {plural} with new ports)"
            )
        elif retried:
            reason = f"{what} after {retried} {plural}"
        else:
            reason = f"{what}, no retry (first attempt)"
        output = attempt_output(service.log).strip().splitlines()[-20:]
        return f"lab component {service.name} {reason}; log: {service.log}\n" + "\n".join(output)

    def terminate(self, name: str) -> None:
        """Stop one service's process group (it stays in ``services``: the caller replaces it)."""
        proc = self.handles.pop(name, None)
        if proc is not None:
            runner.terminate(proc, grace=5)
        elif self.get(name).is_running():  # a PID reused by another process since is not signalled
            runner.terminate_group(self.get(name).pid, grace=5)

    def stop(self, *, check: bool = True) -> None:
        """Kill every service (process group), newest first; verify nothing is left and ports are closed."""
        # A restored lab's service whose PID now belongs to another process (after a reboot): not ours to kill.
        groups = [s.pid for name, s in self.services.items() if name in self.handles or s.is_running()]
        ports = [p for s in self.services.values() for p in s.ports]
        for name in reversed(list(self.services)):
            self.terminate(name)
        for pid in processes_in_groups(groups):  # a child that outlived its leader
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, 9)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (processes_in_groups(groups) or any(port_open(p) for p in ports)):
            time.sleep(0.1)
        self.services.clear()
        if not check:
            return
        left = processes_in_groups(groups)
        still_open = [p for p in ports if port_open(p)]
        if left or still_open:
            raise LabError(f"lab did not stop cleanly: processes {left}, open ports {still_open}")


# --------------------------------------------------------------------------- ports and probes


def secure_server(name: str, argv: list[str | Path]) -> Launch:
    """A control-plane server told its port by ``--secure-port``, healthy when ``/healthz`` answers over HTTPS."""
    return Launch(
        name,
        lambda ports: [*argv, f"--secure-port={ports[0]}"],
        lambda ports: f"https://127.0.0.1:{ports[0]}",
        probe="https",
        probe_path="/healthz",
    )
