"""Messages point only at files that exist (the README, its sections) or at ``--help``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deployctl.sandbox import tools
from deployctl.sandbox.tool_builds import ToolInstallError

REPO = Path(__file__).resolve().parents[2]
MARKDOWN = re.compile(r"[A-Za-z0-9_/.-]+\.md\b")


def test_every_markdown_file_named_in_the_code_exists() -> None:
    named = {
        (path.relative_to(REPO), name)
        for path in (REPO / "deployctl").rglob("*.py")
        for name in MARKDOWN.findall(path.read_text(encoding="utf-8"))
    }
    assert named, "the scan finds the README references"
    missing = sorted(f"{path}: {name}" for path, name in named if not (REPO / name).is_file())
    assert missing == [], "messages name files the repository does not have"


def test_missing_system_tools_point_at_the_readme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    built = tmp_path / "built"
    built.write_text("")
    for step in ("install_helm", "install_go_tool", "install_python_tool"):
        monkeypatch.setattr(tools, step, lambda *_args: built)
    monkeypatch.setattr(tools, "install_kubernetes", lambda _progress: {})
    monkeypatch.setattr(tools, "install_apt", lambda _progress: None)
    monkeypatch.setattr(tools, "find_provider_mirror", lambda: None)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # terraform, kubectl, etcd, docker-registry: not found
    with pytest.raises(ToolInstallError) as caught:
        tools.install(lambda _line: None)
    text = f"{caught.value.message}\n{caught.value.hint}"
    assert "not on PATH: terraform, kubectl, etcd, docker-registry" in text
    assert "README.md" in text and "'Set up'" in text
    assert all((REPO / name).is_file() for name in MARKDOWN.findall(text)), text
    assert "log" not in (caught.value.hint or ""), "no build log was written for this step: none is named"
