"""The only module that starts processes.

argv lists only (never a shell), explicit cwd/env/timeout, no stdin (children
cannot prompt), secrets redacted in everything that leaves this module. Each
caller states which exit codes are success; any other code raises
``CommandFailedError`` with the redacted argv and the tail of stderr.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Protocol

from deployctl.background import CommandCancelledError, current
from deployctl.core.errors import CommandFailedError, ToolNotFoundError
from deployctl.redact import Redactor

log = logging.getLogger(__name__)

STDERR_TAIL_LINES = 15


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]  # redacted
    exit_code: int
    stdout: str
    stderr: str
    duration: float


class Runner(Protocol):
    redactor: Redactor

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok_codes: Collection[int] = (0,),
        stream: bool = False,
        hint: str | None = None,
    ) -> CommandResult: ...


@dataclass
class ProcessRunner:
    """Runs commands as child processes.

    ``stream=True`` copies the child's stderr (and stdout) to our stderr line by
    line as it arrives when verbose, so long terraform/helm runs show progress.
    """

    redactor: Redactor = field(default_factory=Redactor)
    verbose: bool = False
    base_env: Mapping[str, str] | None = None
    on_line: Callable[[str], None] | None = None

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        ok_codes: Collection[int] = (0,),
        stream: bool = False,
        hint: str | None = None,
    ) -> CommandResult:
        argv = [str(a) for a in argv]
        executable = shutil.which(argv[0], path=(env or self._env()).get("PATH"))
        if executable is None:
            raise ToolNotFoundError(
                f"{argv[0]} is not installed or not on PATH",
                f"install {argv[0]} (see `deployctl doctor`), or run `make setup`",
            )
        shown = self.redactor.argv(argv)
        log.debug("run: %s (cwd=%s)", " ".join(shown), cwd or ".")
        started = time.monotonic()
        proc = subprocess.Popen(
            [executable, *argv[1:]],
            cwd=cwd,
            env=dict(env) if env is not None else self._env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,  # Ctrl-C is handled by us: we terminate the group
        )
        out: list[str] = []
        err: list[str] = []
        echo = self._echo if (stream and self.verbose) else None
        readers = [
            threading.Thread(target=_pump, args=(proc.stdout, out, echo), daemon=True),
            threading.Thread(target=_pump, args=(proc.stderr, err, echo), daemon=True),
        ]
        for reader in readers:
            reader.start()
        try:
            exit_code = _wait(proc, timeout)
        except CommandCancelledError as exc:
            terminate(proc)
            for reader in readers:
                reader.join()
            raise CommandCancelledError(f"{Path(argv[0]).name} was stopped: {exc.message}") from None
        except subprocess.TimeoutExpired:
            terminate(proc)
            for reader in readers:
                reader.join()
            raise CommandFailedError(
                shown, -1, self.redactor(_tail("".join(err))), hint, reason=f"timed out after {timeout:g}s"
            ) from None
        except BaseException:  # KeyboardInterrupt included: never leave a child behind
            terminate(proc)
            raise
        for reader in readers:
            reader.join()
        result = CommandResult(
            argv=shown,
            exit_code=exit_code,
            stdout=self.redactor("".join(out)),
            stderr=self.redactor("".join(err)),
            duration=time.monotonic() - started,
        )
        log.debug("exit %d after %.2fs: %s", exit_code, result.duration, argv[0])
        if exit_code not in ok_codes:
            raise CommandFailedError(shown, exit_code, _tail(result.stderr or result.stdout), hint)
        return result

    def _env(self) -> dict[str, str]:
        return dict(self.base_env if self.base_env is not None else os.environ)

    def _echo(self, line: str) -> None:
        text = self.redactor(line.rstrip("\n"))
        if self.on_line is not None:
            self.on_line(text)
        else:
            log.info("%s", text)


def _wait(proc: subprocess.Popen[str], timeout: float | None) -> int:
    """``proc.wait(timeout)``, except that in a ``Background`` thread it also ends, with
    CommandCancelledError, when that Background is cancelled (checked every 50 ms)."""
    background = current()
    if background is None:
        return proc.wait(timeout=timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if background.cancelled:
            raise CommandCancelledError(background.reason or "cancelled")
        step = 0.05 if deadline is None else min(0.05, max(deadline - time.monotonic(), 0))
        try:
            return proc.wait(timeout=step)
        except subprocess.TimeoutExpired:
            if deadline is not None and time.monotonic() >= deadline:
                raise


def _pump(stream: IO[str] | None, sink: list[str], echo: Callable[[str], None] | None) -> None:
    if stream is None:
        return
    for line in stream:
        sink.append(line)
        if echo is not None:
            echo(line)
    stream.close()


def _tail(text: str, lines: int = STDERR_TAIL_LINES) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def terminate(proc: subprocess.Popen[str] | subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """Stop a child and its process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        proc.wait()


def spawn(
    argv: Sequence[str], *, log_path: Path, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a long-running service in its own process group, output to ``log_path``.

    Used by the lab/sandbox for servers (moto, registry, etcd, kube-apiserver...).
    The caller owns the process and stops it with ``terminate``.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as sink:
        return subprocess.Popen(
            [str(a) for a in argv],
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def run_logged(
    argv: Sequence[str],
    *,
    log_path: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> int:
    """Run a long build step with its output appended to ``log_path`` (follow it with ``tail -f``).

    Returns the exit code (-1 after a timeout); the caller decides what success is.
    """
    with log_path.open("ab") as sink:
        sink.write(("\n$ " + " ".join(str(a) for a in argv) + "\n").encode())
    proc = spawn(argv, log_path=log_path, cwd=cwd, env=env)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        terminate(proc)
        return -1
    except BaseException:
        terminate(proc)
        raise


def pid_alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie (a zombie has exited; it only waits to be reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def terminate_group(pgid: int, grace: float = 5.0) -> bool:
    """Stop a process group we did not start in this process (e.g. a detached sandbox service).

    SIGTERM, then SIGKILL after ``grace`` seconds; True when the leader is gone.
    """
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pgid):
            return True
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and pid_alive(pgid):
        time.sleep(0.05)
    return not pid_alive(pgid)
