"""The runner against real child processes (python itself is the child: always present)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from deployctl.background import Background, CommandCancelledError
from deployctl.core.errors import CommandFailedError, ToolNotFoundError
from deployctl.redact import MASK, Redactor
from deployctl.runner import ProcessRunner

PY = sys.executable


def test_result_carries_argv_code_output_and_duration(tmp_path: Path) -> None:
    result = ProcessRunner().run(
        [PY, "-c", "import os,sys; print(os.getcwd()); print('err', file=sys.stderr)"], cwd=tmp_path
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == str(tmp_path)
    assert result.stderr.strip() == "err"
    assert result.argv[0] == PY
    assert result.duration > 0


def test_non_success_exit_raises_with_stderr_tail_and_hint() -> None:
    with pytest.raises(CommandFailedError) as caught:
        ProcessRunner().run([PY, "-c", "import sys; print('boom', file=sys.stderr); sys.exit(3)"], hint="do X")
    error = caught.value
    assert error.returncode == 3
    assert "boom" in error.message
    assert error.hint == "do X"
    assert error.exit_code == 1


def test_declared_success_codes_are_accepted() -> None:
    result = ProcessRunner().run([PY, "-c", "raise SystemExit(2)"], ok_codes=(0, 2))
    assert result.exit_code == 2


def test_child_cannot_read_stdin() -> None:
    result = ProcessRunner().run([PY, "-c", "import sys; print(repr(sys.stdin.read()))"])
    assert result.stdout.strip() == "''"


def test_explicit_env_replaces_inherited_env() -> None:
    result = ProcessRunner().run(
        [PY, "-c", "import os; print(sorted(k for k in os.environ if k.startswith('DCTL')))"],
        env={"DCTL_ONLY": "1", "PATH": os.environ["PATH"]},
    )
    assert result.stdout.strip() == "['DCTL_ONLY']"


def test_timeout_kills_child_and_reports() -> None:
    started = time.monotonic()
    with pytest.raises(CommandFailedError, match="timed out"):
        ProcessRunner().run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5)
    assert time.monotonic() - started < 10


def test_missing_tool_is_a_clear_error() -> None:
    with pytest.raises(ToolNotFoundError, match="no-such-tool-xyz is not installed"):
        ProcessRunner().run(["no-such-tool-xyz", "--version"])


def test_planted_secret_never_appears_in_result_error_or_stream(capfd: pytest.CaptureFixture[str]) -> None:
    secret = "planted-S3CRET-9f8e7d"
    lines: list[str] = []
    runner = ProcessRunner(redactor=Redactor([secret]), verbose=True, on_line=lines.append)
    code = f"import sys; print('out {secret}'); print('err {secret}', file=sys.stderr); sys.exit(1)"
    with pytest.raises(CommandFailedError) as caught:
        runner.run([PY, "-c", code, "--token", secret], stream=True)
    error = caught.value
    captured = capfd.readouterr()
    everything = [error.message, " ".join(error.argv), error.stderr_tail, *lines, captured.out, captured.err]
    assert all(secret not in text for text in everything)
    assert any(MASK in line for line in lines)
    assert MASK in " ".join(error.argv)


def test_interrupt_terminates_the_child_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    code = f"import os,time; open({str(pid_file)!r},'w').write(str(os.getpid())); time.sleep(60)"

    def interrupt_soon() -> None:
        while not pid_file.exists() or not pid_file.read_text():
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_soon, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        ProcessRunner().run([PY, "-c", code])
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"child {child} still alive after interrupt")


# --------------------------------------------------------------------------- Background: run in a thread, cancel from another


def _gone(pid: int, within: float = 10) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _sleeper(pid_file: Path, seconds: int = 60) -> list[str]:
    return [PY, "-c", f"import os,time; open({str(pid_file)!r},'w').write(str(os.getpid())); time.sleep({seconds})"]


def _pid(pid_file: Path) -> int:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text():
            return int(pid_file.read_text())
        time.sleep(0.02)
    pytest.fail("the child never started")


@pytest.mark.parametrize(
    ("case", "argv", "outcome"),
    [
        ("returns its result", [PY, "-c", "print('done')"], "done"),
        ("raises what the command raised", [PY, "-c", "import sys; sys.exit(3)"], CommandFailedError),
    ],
)
def test_background_hands_back_the_result_or_the_error(case: str, argv: list[str], outcome: object) -> None:
    task = Background(lambda: ProcessRunner().run(argv).stdout.strip())
    assert task.wait(30), case
    assert task.done
    if isinstance(outcome, str):
        assert task.result() == outcome
    else:
        with pytest.raises(CommandFailedError):
            task.result()


def test_cancel_stops_the_running_command_at_once_and_kills_its_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    task = Background(lambda: ProcessRunner().run(_sleeper(pid_file)))
    child = _pid(pid_file)
    assert not task.wait(0.2), "still running"
    started = time.monotonic()
    task.cancel("hook Job/migrate failed")
    assert task.done
    assert time.monotonic() - started < 6, "SIGTERM ends a well-behaved child at once"
    with pytest.raises(CommandCancelledError, match="was stopped: hook Job/migrate failed"):
        task.result()
    assert _gone(child)


def test_cancel_leaves_commands_of_other_threads_alone(tmp_path: Path) -> None:
    """Only the cancelled Background's commands stop: a run in this thread, at the same time, completes."""
    pid_file = tmp_path / "pid"
    task = Background(lambda: ProcessRunner().run(_sleeper(pid_file)))
    _pid(pid_file)
    other = Background(lambda: ProcessRunner().run([PY, "-c", "import time; time.sleep(0.5); print('ok')"]))
    task.cancel("stop")
    assert ProcessRunner().run([PY, "-c", "print('here')"]).stdout.strip() == "here"
    assert other.wait(30) and other.result().stdout.strip() == "ok"


def test_a_timeout_still_applies_in_the_background() -> None:
    task = Background(lambda: ProcessRunner().run([PY, "-c", "import time; time.sleep(30)"], timeout=0.5))
    assert task.wait(15)
    with pytest.raises(CommandFailedError, match="timed out"):
        task.result()
