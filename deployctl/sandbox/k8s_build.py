"""The Kubernetes control plane's binaries (kube-apiserver, controller-manager, scheduler) built from source with go,
at the pinned version."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from deployctl import runner
from deployctl.core.errors import OperationError
from deployctl.sandbox import versions
from deployctl.sandbox.tool_builds import (
    K8S_COMMANDS,
    Progress,
    fail,
    go_env,
    is_complete,
    logs_dir,
    mark_complete,
    require_go,
    run_step,
    tool_dir,
)


def install_kubernetes(progress: Progress) -> dict[str, Path]:
    """kube-apiserver, kube-controller-manager and kube-scheduler from a wrapper module.

    k8s.io/kubernetes cannot be ``go install``ed: its go.mod replaces the k8s.io/* staging modules
    with local paths. The wrapper requires it and replaces each staging module with its published
    v0.X.Y, or with an empty stub module when that version was never published.
    """
    version = versions.KUBERNETES
    directory = tool_dir("kubernetes", version)
    out = directory / "bin"
    binaries = {name: out / name for name in K8S_COMMANDS}
    if is_complete(directory) and all(p.is_file() for p in binaries.values()):
        return binaries
    log_path = logs_dir() / f"kubernetes-{version}.log"
    progress(f"building kubernetes {version} control plane (cold: ~10-15 min on 2 cores; log: {log_path})")
    go = require_go("kubernetes")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="deployctl-k8s-") as tmp:
        work = Path(tmp) / "wrapper"
        outside = Path(tmp) / "outside"
        work.mkdir()
        outside.mkdir()
        env = go_env({"GOFLAGS": "-mod=mod"})
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
        run_step(
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
    mark_complete(directory)
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
    process = runner.ProcessRunner(base_env=go_env({"GOFLAGS": ""}))
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
