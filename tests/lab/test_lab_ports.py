"""A port taken between picking it and binding it never fails the lab (issue 21).

moto, the registries, their fronts and kwok bind port 0 and the lab reads the port back; etcd, the API
server, the controller-manager and the scheduler get a port picked right before they start, and start
again with a new one when they exit with "address already in use".
"""

from __future__ import annotations

import collections
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

import pytest

from deployctl.cli.main import main
from deployctl.sandbox import tools
from deployctl.sandbox.lab import Lab, LabError
from deployctl.sandbox.ports import free_port, port_open
from deployctl.sandbox.processes import START_ATTEMPTS
from deployctl.sandbox.procfs import groups_with_cwd, processes_in_groups
from deployctl.sandbox.tools import Tools

pytestmark = pytest.mark.lab

PROJECT_TOML = (
    "[tool.deployctl.environments.dev]\n"
    'aws = { region = "us-east-1" }\n'
    'terraform = { root = "tf", backend = { bucket = "tfstate", key = "dev.tfstate", region = "us-east-1" } }\n'
)


@contextmanager
def taken_port(holder: str) -> Iterator[int]:
    """A loopback port held by a listener, or as the local port of an outgoing connection (what the
    issue saw: a client's ephemeral port landing on the number the lab had picked)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        if holder == "listener":
            yield listener.getsockname()[1]
            return
        with socket.create_connection(listener.getsockname()) as client:
            yield client.getsockname()[1]


def picker(first: Sequence[int]) -> Callable[[], int]:
    """The lab's port picker, made to return ``first`` before any free port (the race, made certain)."""
    queue = collections.deque(first)
    return lambda: queue.popleft() if queue else free_port()


@pytest.mark.parametrize("holder", ["listener", "outgoing connection"])
def test_a_taken_port_is_retried_with_a_new_one_and_the_retry_is_logged(
    lab_tools: Tools, tmp_path: Path, holder: str
) -> None:
    said: list[str] = []
    with taken_port(holder) as port:
        lab = Lab(state_dir=tmp_path / "lab", tools=lab_tools)
        lab.processes.pick_port = picker([port])
        lab.start(["cluster"], progress=said.append)
        try:
            retried = [s for s in lab.services.values() if s.attempts > 1]
            assert [s.attempts for s in retried] == [2]
            service = retried[0]
            assert port not in service.ports
            assert len(lab.processes.retries) == 1
            line = lab.processes.retries[0]
            assert line.startswith(f"{service.name}: port {port}") and "attempt 2/" in line
            assert line in said  # the progress shows it
            log_text = Path(service.log).read_text(errors="replace")
            assert f"start attempt 1/{START_ATTEMPTS}, ports: {port}" in log_text
            assert "address already in use" in log_text.lower()  # the real process really could not bind
            assert f"start attempt 2/{START_ATTEMPTS}" in log_text
            assert lab.kube("GET", "/readyz")[0] == 200  # the cluster works, on the new port
            assert all(lab.status().values())
        finally:
            lab.stop()


def test_a_component_whose_port_is_always_taken_fails_naming_itself_its_log_and_the_retries(
    lab_tools: Tools, tmp_path: Path
) -> None:
    lab = Lab(state_dir=tmp_path / "lab", tools=lab_tools)
    with taken_port("listener") as port:
        lab.processes.pick_port = lambda: port
        with pytest.raises(LabError) as caught:
            lab.start(["cluster"])

    first_line = caught.value.message.splitlines()[0]
    log_path = tmp_path / "lab" / "logs" / "etcd.log"
    assert first_line == (
        f"lab component etcd could not bind: its picked port was taken on all {START_ATTEMPTS} attempts "
        f"({START_ATTEMPTS - 1} retries with new ports); log: {log_path}"
    )
    assert log_path.read_text().count("start attempt") == START_ATTEMPTS
    assert groups_with_cwd(tmp_path / "lab") == []  # everything started was stopped
    assert lab.services == {}


def _project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(PROJECT_TOML)
    monkeypatch.chdir(project)
    monkeypatch.delenv("DEPLOYCTL_SANDBOX", raising=False)
    monkeypatch.delenv("DEPLOYCTL_CONFIG", raising=False)
    return project / ".deployctl" / "sandbox"


def test_sandbox_up_that_fails_leaves_no_state_and_nothing_running(
    lab_tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The registry binary is swapped for /bin/false (injected: the real registry cannot be made to fail
    on demand), so moto is already up when the registry exits."""
    sandbox = _project(tmp_path, monkeypatch)
    broken = Tools(
        bin_dir=lab_tools.bin_dir,
        paths={**lab_tools.paths, "docker-registry": Path("/bin/false")},
        provider_mirror=lab_tools.provider_mirror,
        terraformrc=lab_tools.terraformrc,
    )
    monkeypatch.setattr(tools, "installed", lambda: broken)

    assert main(["sandbox", "up", "--only", "moto", "--only", "registry"]) == 1

    error = capsys.readouterr().err
    assert f"lab component registry-0-backend exited during start-up after {START_ATTEMPTS - 1} retries" in error
    assert f"log: {sandbox / 'logs' / 'registry-0-backend.log'}" in error
    assert not (sandbox / "state.json").exists()
    assert groups_with_cwd(sandbox) == []  # moto, started first, was stopped
    assert main(["sandbox", "status"]) == 1
    assert "not running" in capsys.readouterr().out


def test_sandbox_down_stops_what_a_killed_up_left_running(
    lab_tools: Tools, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sandbox up`` killed (SIGKILL) mid-start wrote no state; ``down`` still finds its services by
    their working directory and stops them."""
    sandbox = _project(tmp_path, monkeypatch)
    deployctl = Path(sys.executable).with_name("deployctl")
    env = {**os.environ, "PATH": f"{lab_tools.bin_dir}{os.pathsep}{os.environ['PATH']}"}
    up = subprocess.Popen([deployctl, "sandbox", "up", "--only", "cluster"], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (sandbox / "logs" / "kube-apiserver.log").exists():
            time.sleep(0.05)
        assert (sandbox / "logs" / "kube-apiserver.log").exists()
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    leftovers = groups_with_cwd(sandbox)
    assert leftovers  # etcd and the API server outlived the killed command
    assert not (sandbox / "state.json").exists()

    assert main(["sandbox", "down"]) == 0

    assert processes_in_groups(leftovers) == []
    assert not sandbox.exists()


class LoopbackChurn:
    """Loopback connections opened and closed as fast as one thread can, ``window`` of them open at
    any moment. Linux gives ``connect()`` even ephemeral ports and ``bind(port 0)`` odd ones, and the
    lab's picks come from ``bind(port 0)``: so every other connection binds port 0 before connecting
    (as clients with a source address do, and other services binding port 0), which lands on the lab's
    half. Closes send RST (SO_LINGER 0): no TIME_WAIT piles up, the test is about the race, not about
    exhausting the range."""

    def __init__(self, window: int = 1024) -> None:
        self.window = window
        self.opened = 0
        self._stop = threading.Event()
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(4096)
        self._listener.settimeout(0.2)
        self._threads = [threading.Thread(target=self._accept), threading.Thread(target=self._connect)]

    def __enter__(self) -> LoopbackChurn:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self._listener.close()

    def _accept(self) -> None:
        held: collections.deque[socket.socket] = collections.deque()
        while not self._stop.is_set():
            try:
                held.append(self._listener.accept()[0])
            except OSError:
                continue
            while len(held) > self.window:
                held.popleft().close()
        for conn in held:
            conn.close()

    def _connect(self) -> None:
        held: collections.deque[socket.socket] = collections.deque()
        address = self._listener.getsockname()
        while not self._stop.is_set():
            client = socket.socket()
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            try:
                if self.opened % 2:
                    client.bind(("127.0.0.1", 0))
                client.connect(address)
            except OSError:
                client.close()
                continue
            self.opened += 1
            held.append(client)
            while len(held) > self.window:
                held.popleft().close()
        for conn in held:
            conn.close()


LIGHT_STARTS = 12
FULL_STARTS = 8


def test_lab_starts_every_time_while_loopback_ports_churn(lab_tools: Tools, tmp_path: Path) -> None:
    """LIGHT_STARTS starts of moto + two registries with their fronts (five services, all on port 0)
    and FULL_STARTS of the whole lab (the control plane's four picked-port services: etcd, API server,
    controller-manager, scheduler); the full lab takes ~10 s a start, so it gets fewer to keep
    ``make test`` short. Every start must succeed, every stop leave no process and no open port."""
    durations: dict[str, list[float]] = {"light": [], "full": []}
    retries = 0
    state_dir = tmp_path / "lab"  # reused: the PKI is made once, etcd and registry data are wiped per start
    with LoopbackChurn() as churn:
        plan = ["full", *["light"] * (LIGHT_STARTS // FULL_STARTS)] * FULL_STARTS
        plan += ["light"] * (LIGHT_STARTS - plan.count("light"))
        for kind in plan:
            components = ("moto", "registry", "cluster") if kind == "full" else ("moto", "registry")
            lab = Lab(state_dir=state_dir, tools=lab_tools, registries=2)
            started = time.monotonic()
            lab.start(components)
            durations[kind].append(time.monotonic() - started)
            assert all(lab.status().values()), lab.status()
            retries += len(lab.processes.retries)
            groups = [s.pid for s in lab.services.values()]
            ports = [p for s in lab.services.values() for p in s.ports]
            lab.stop()  # raises when a process or a port is left
            assert processes_in_groups(groups) == []
            assert [p for p in ports if port_open(p)] == []
        opened = churn.opened

    assert len(durations["light"]) == LIGHT_STARTS and len(durations["full"]) == FULL_STARTS
    for kind, values in durations.items():
        os.write(
            2,
            f"[measure] lab starts under loopback churn, {kind}: {len(values)} starts, all succeeded; "
            f"start median {statistics.median(values):.2f}s, max {max(values):.2f}s\n".encode(),
        )
    os.write(2, f"[measure] port retries seen: {retries}; churn opened {opened} loopback connections\n".encode())
