"""The lab for the benchmarks that need services: one ``Lab`` per benchmark, always stopped, and a
throwaway copy of the repository whose configuration points at it (the ``deployctl sandbox`` way)."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.measure import SplitRun, run_split, say, scratch_dir
from deployctl.runner import CommandResult, ProcessRunner
from deployctl.sandbox import tools
from deployctl.sandbox.lab import Lab

REPO = Path(__file__).resolve().parents[1]
# What `deployctl deploy/plan` read from a checkout: the configuration, the chart, values and terraform roots.
CHECKOUT = ("pyproject.toml", "values-dev.yaml", "values-prod.yaml", "charts", "terraform")


@contextmanager
def started(components: Iterable[str], *, registries: int = 1) -> Iterator[Lab]:
    """A lab with ``components`` for one benchmark; stopped (and its state removed) however it ends."""
    state = scratch_dir("lab")
    lab = Lab(state_dir=state, tools=tools.ensure(progress=say), registries=registries)
    lab.start(components, progress=say)
    try:
        yield lab
    finally:
        say("stopping the lab")
        try:
            lab.stop()
        finally:
            shutil.rmtree(state, ignore_errors=True)


def tool_env(lab: Lab) -> dict[str, str]:
    """The environment of a pipeline job pointed at the lab (PATH with crane/helm/terraform first)."""
    env = {**os.environ, **lab.env(), "NO_COLOR": "1"}
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "DEPLOYCTL_SANDBOX", "DEPLOYCTL_CONFIG", "TF_DATA_DIR", "CI"):
        env.pop(name, None)
    return env


@dataclass
class Checkout:
    """A copy of the repository's deployable files whose environments point at the lab."""

    root: Path
    env: dict[str, str]
    runner: ProcessRunner

    def deployctl(
        self,
        *args: str,
        ok_codes: Sequence[int] = (0,),
        timeout: float = 900,
        output_json: bool = False,
        side: Side | None = None,
    ) -> CommandResult:
        """The installed console script, as a pipeline runs it (a child process, cwd in the checkout); ``side``:
        which deployctl (see ``sides``; default this tree's)."""
        argv = [str(Path(sys.executable).with_name("deployctl")), *(["-o", "json"] if output_json else []), *args]
        env = {**self.env, **(side.env if side is not None else {})}
        return self.runner.run(argv, cwd=self.root, env=env, ok_codes=ok_codes, timeout=timeout)

    def deployctl_split(self, *args: str, ok_codes: Sequence[int] = (0,), side: Side | None = None) -> SplitRun:
        """``deployctl`` as ``deployctl`` runs it, with its own CPU apart from its children's (``run_split``)."""
        argv = [str(Path(sys.executable).with_name("deployctl")), *args]
        found = run_split(argv, env={**self.env, **(side.env if side is not None else {})}, cwd=self.root)
        if found.exit_code not in ok_codes:
            tail = (found.stderr.strip().splitlines() or ["(no output)"])[-1]
            raise RuntimeError(f"deployctl {' '.join(args)} exited {found.exit_code}: {tail}")
        return found

    def run(
        self, argv: Sequence[str], *, ok_codes: Sequence[int] = (0,), timeout: float = 900, cwd: Path | None = None
    ) -> CommandResult:
        return self.runner.run(list(argv), cwd=cwd or self.root, env=self.env, ok_codes=ok_codes, timeout=timeout)


@contextmanager
def checkout(lab: Lab, extra_env: Mapping[str, str] | None = None) -> Iterator[Checkout]:
    """Copy the repository's config, chart, values and terraform; point it at ``lab`` through a
    sandbox state file (``DEPLOYCTL_SANDBOX``), exactly as ``eval "$(deployctl sandbox env)"`` does."""
    from deployctl.config import load
    from deployctl.sandbox.state_buckets import bootstrap_state_buckets

    root = scratch_dir("repo")
    try:
        for name in CHECKOUT:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(".terraform", "*.tfplan"))
            else:
                shutil.copy2(source, root / name)
        state_file = root / ".deployctl" / "sandbox" / "state.json"
        state_file.parent.mkdir(parents=True)
        state_file.write_text(json.dumps(lab.state(), indent=2) + "\n", encoding="utf-8")
        settings = load(root / "pyproject.toml").settings
        if "moto" in lab.services:
            bootstrap_state_buckets(lab, settings)
        env = {**tool_env(lab), "DEPLOYCTL_SANDBOX": str(state_file), **(extra_env or {})}
        yield Checkout(root, env, ProcessRunner())
    finally:
        shutil.rmtree(root, ignore_errors=True)


def elapsed_since(started_at: float) -> str:
    return f"{time.monotonic() - started_at:.1f}s"


BASELINE_ENV = "BENCH_BASELINE"  # a git ref: also measure deployctl as it was there, interleaved with this tree


@dataclass(frozen=True)
class Side:
    """One deployctl measured: this tree (``env`` empty), or a baseline's package first on PYTHONPATH."""

    label: str
    env: Mapping[str, str]


def sides() -> list[Side]:
    """This tree's deployctl (unless ``$BENCH_TREE`` is 0), and each baseline's when ``$BENCH_BASELINE`` names git
    refs (``--baseline``; commas between several): its ``deployctl`` package extracted (``git archive``) and
    compiled once, put first on the child's PYTHONPATH (the same venv, tools and lab serve every side). The caller
    alternates their order run by run."""
    refs = [r.strip() for r in os.environ.get(BASELINE_ENV, "").split(",") if r.strip()]
    found = [Side("deployctl", {})] if os.environ.get("BENCH_TREE", "1") != "0" else []
    found += [Side(f"deployctl@{ref}", {"PYTHONPATH": str(_baseline(ref))}) for ref in refs]
    return found


_extracted: dict[str, Path] = {}


def _baseline(ref: str) -> Path:
    if ref not in _extracted:
        import compileall
        import tarfile

        target = scratch_dir("baseline")
        archive = target / "deployctl.tar"
        ProcessRunner().run(["git", "-C", str(REPO), "archive", "-o", str(archive), ref, "deployctl"])
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        archive.unlink()
        compileall.compile_dir(target / "deployctl", quiet=1)
        _extracted[ref] = target
    return _extracted[ref]


def alternate(found: Sequence[Side], round_: int) -> list[Side]:
    """``found`` in turn order for round ``round_``: reversed every other round, so neither side always goes first."""
    return list(found) if round_ % 2 == 0 else list(reversed(found))
