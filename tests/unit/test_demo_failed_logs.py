"""A failed demo keeps its sandbox's logs: the clone (and the sandbox in it) is removed, the logs are moved out."""

from __future__ import annotations

from pathlib import Path

from deployctl.sandbox.demo import _keep_sandbox_logs


def test_the_logs_are_moved_out_of_the_clone_before_it_is_removed(tmp_path: Path) -> None:
    clone = tmp_path / "work"
    logs = clone / ".deployctl" / "sandbox" / "logs"
    logs.mkdir(parents=True)
    (logs / "moto.log").write_text('"POST / HTTP/1.1" 409 -\n', encoding="utf-8")

    kept = _keep_sandbox_logs(clone, tmp_path)

    assert kept == tmp_path / "failed-run-logs"
    assert (kept / "moto.log").read_text(encoding="utf-8") == '"POST / HTTP/1.1" 409 -\n'
    assert not logs.exists(), "moved, so removing the clone cannot take them"


def test_a_story_that_failed_before_its_sandbox_started_keeps_nothing(tmp_path: Path) -> None:
    assert _keep_sandbox_logs(tmp_path / "work", tmp_path) is None
    assert not (tmp_path / "failed-run-logs").exists()
