"""The lab's processes: each service in its own process group with its log, readiness probes,
stopping whole groups, and the port and /proc helpers they need."""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import socket
import ssl
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployctl import runner
from deployctl.errors import OperationError

log = logging.getLogger(__name__)

# The lab's health probes present the admin client certificate (the API server) or nothing.
ClientCert = tuple[Path, Path]


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

    def healthy(self, ca: Path | None = None, client: ClientCert | None = None) -> bool:
        if not runner.pid_alive(self.pid):
            return False
        if self.probe == "tcp":
            return all(port_open(p) for p in self.ports)
        return http_ok(self.ports[0], self.probe_path, tls=self.probe == "https", ca=ca, client=client)


@dataclass
class Processes:
    """The running services of one lab by name, in start order, with logs under ``directory/logs``.

    ``handles`` holds the ``Popen`` of the services this process started; a lab restored from its
    state (another CLI process) stops the others by process group."""

    directory: Path
    services: dict[str, Service] = field(default_factory=dict)
    handles: dict[str, Any] = field(default_factory=dict, repr=False)

    def get(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise LabError(f"lab component {name!r} is not running", "start it: Lab.start([...])") from None

    def spawn(
        self,
        name: str,
        argv: Sequence[str | Path],
        *,
        ports: list[int],
        endpoint: str,
        probe: str,
        probe_path: str = "/",
        env: Mapping[str, str] | None = None,
    ) -> Service:
        log_path = self.directory / "logs" / f"{name}.log"
        proc = runner.spawn([str(a) for a in argv], log_path=log_path, cwd=self.directory, env=env)
        service = Service(name, proc.pid, ports, str(log_path), endpoint, probe, probe_path)
        self.services[name] = service
        self.handles[name] = proc
        return service

    def wait(self, name: str, timeout: float, ca: Path | None = None, client: ClientCert | None = None) -> None:
        service = self.get(name)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not runner.pid_alive(service.pid):
                raise LabError(f"{name} exited during start-up; log: {service.log}\n{tail(service.log)}")
            if service.healthy(ca, client):
                log.debug("%s ready at %s", name, service.endpoint)
                return
            time.sleep(0.1)
        raise LabError(f"{name} not ready after {timeout:.0f}s; log: {service.log}\n{tail(service.log)}")

    def terminate(self, name: str) -> None:
        """Stop one service's process group (it stays in ``services``: the caller replaces it)."""
        proc = self.handles.pop(name, None)
        if proc is not None:
            runner.terminate(proc, grace=5)
        else:
            runner.terminate_group(self.get(name).pid, grace=5)

    def stop(self, *, check: bool = True) -> None:
        """Kill every service (process group), newest first; verify nothing is left and ports are closed."""
        groups = [s.pid for s in self.services.values()]
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


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def ssl_context(ca: Path | None, client: ClientCert | None) -> ssl.SSLContext:
    # Without a CA: a health probe of a loopback service with a self-signed cert.
    context = ssl._create_unverified_context() if ca is None else ssl.create_default_context(cafile=str(ca))  # noqa: S323
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context


def http_ok(port: int, path: str, *, tls: bool, ca: Path | None, client: ClientCert | None) -> bool:
    try:
        if tls:
            # controller-manager/scheduler serve self-signed certs; the API server's is from our CA.
            context = ssl_context(ca, client)
            context.check_hostname = False
            if ca is not None:
                context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", port, context=context, timeout=2
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


# --------------------------------------------------------------------------- /proc


def processes_in_groups(groups: Iterable[int]) -> list[int]:
    """PIDs (not zombies) whose process group is one of ``groups``."""
    wanted = set(groups)
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        state, pgid = fields[0], int(fields[2])
        if pgid in wanted and state != "Z":
            found.append(int(entry.name))
    return found


def rss_of_groups(groups: Iterable[int]) -> int:
    """Total resident memory of every member of the process groups ``groups``."""
    total = 0
    for pid in processes_in_groups(groups):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def tail(path: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a log (empty when it cannot be read)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
