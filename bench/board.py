"""The release board at scale: 50 apps x 3 environments x 500 ledger entries each, target under 2 s.

The use case runs as ``deployctl board`` does (every environment read in parallel, the real ledger code,
release health judged per app, release tags and commit subjects from a real git repository, the page
written), on in-memory S3 and clusters (tests/unit/fakes.py), so what is measured is deployctl's own work,
not a network. Also the drawing alone (HTML, Markdown) from the same board.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.measure import Sample, say
from deployctl.adapters.helm import Release
from deployctl.app.board import board
from deployctl.app.context import Contexts
from deployctl.board import render as board_render
from deployctl.board import render_md
from deployctl.config import load
from deployctl.ledger.entry import Entry, Outcome
from deployctl.runner import ProcessRunner
from tests.unit.fakes import Events, FakeContext, FakeS3

APPS, ENTRIES, TARGET = 50, 500, 2.0
ENVS = (("dev", None), ("staging", "dev"), ("prod", "staging"))
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "PATH": "/usr/bin:/bin",
}


def _git(repo: Path, *args: str) -> str:
    run = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=GIT_ENV)
    return run.stdout.strip()


def _config(root: Path) -> str:
    lines = ["[tool.deployctl]"]
    for i in range(APPS):
        lines += [
            f"[tool.deployctl.apps.app{i:02d}]",
            'chart = "charts/api"',
            f'release = "app{i:02d}"',
            f'image = {{ registry = "registry.example:5000", repository = "app{i:02d}" }}',
        ]
    for env, source in ENVS:
        backend = f'{{ bucket = "bench-tfstate", key = "{env}/terraform.tfstate", region = "us-east-1" }}'
        lines += [
            f"[tool.deployctl.environments.{env}]",
            'aws = { region = "us-east-1" }',
            f'terraform = {{ root = "tf", backend = {backend} }}',
            'cluster = { kubeconfig = "kubeconfig" }',
            f'namespace = "{env}"',
            f'values = "values-{env}.yaml"',
        ]
        if source:
            lines.append(f'promote_from = "{source}"')
            lines.append("promote_soak_minutes = 0")
    (root / "charts" / "api").mkdir(parents=True)
    for env, _ in ENVS:
        sections = "".join(f"app{i:02d}:\n  replicaCount: 1\n" for i in range(APPS))
        (root / f"values-{env}.yaml").write_text(sections)
    return "\n".join(lines) + "\n"


def world(root: Path) -> Contexts:
    """A repository with 40 commits and 20 release tags, and three environments whose ledgers hold 500 entries
    each (deploys, promotions, failures, their intents) and whose clusters run each app's newest digest."""
    (root / "pyproject.toml").write_text(_config(root))
    _git(root, "init", "-q", "-b", "main")
    commits = []
    for n in range(40):
        (root / "app.txt").write_text(f"{n}\n")
        _git(root, "add", ".")
        _git(root, "commit", "-q", "-m", f"app: change {n}")
        commits.append(_git(root, "rev-parse", "HEAD"))
        if n % 2:
            _git(root, "tag", f"release-1.{n // 2}.0")
    config, runner, s3 = load(root / "pyproject.toml"), ProcessRunner(), FakeS3()
    contexts = Contexts(config, runner, Events())
    rng = random.Random(18)  # noqa: S311 (synthetic history, seeded: the same every run)
    for env, source in ENVS:
        ctx = FakeContext(config, env, runner, s3=s3)
        contexts._built[env] = ctx
        running: dict[str, str] = {}
        for n in range(ENTRIES):
            app = f"app{rng.randrange(APPS):02d}"
            commit = commits[min(len(commits) - 1, n * len(commits) // ENTRIES)]
            digest = "sha256:" + f"{n:04d}{app}".encode().hex().ljust(64, "0")[:64]
            failed = rng.random() < 0.1
            time_ = (NOW - timedelta(minutes=ENTRIES - n)).isoformat(timespec="microseconds")
            release = f"release-1.{n * 20 // ENTRIES}.0" if source else f"{app}@{n}"
            action = "promote" if source else "deploy"
            intent = Entry(env=env, app=app, action=action, outcome="started", digest=digest, commit=commit,
                           release=release, time=time_, ci_run_id=str(1000 + n))  # fmt: skip
            s3.clock = _at(time_)  # S3's LastModified: when it was written
            ctx.record(intent)
            outcome: Outcome = "failed" if failed else "succeeded"
            verdict = "failed" if failed else "healthy"
            done = (NOW - timedelta(minutes=ENTRIES - n, seconds=-5)).isoformat(timespec="microseconds")
            s3.clock = _at(done)
            ctx.record(replace(intent, outcome=outcome, verdict=verdict, intent=intent.id, time=done, id=f"o{n:011d}"))
            if not failed:
                running[app] = digest
        cluster = ctx.fake_cluster
        for app, digest in running.items():
            cluster.releases[app] = Release(app, env, 3, "deployed")
            cluster.desired[app] = cluster.serving[app] = digest
    return contexts


def _at(moment: str) -> Callable[[], datetime]:
    return lambda: datetime.fromisoformat(moment)


def run(repeat: int, smoke: bool = False) -> list[Sample]:
    del smoke  # the full size is cheap enough for the smoke run
    with tempfile.TemporaryDirectory(prefix="deployctl-bench-board-") as tmp:
        root = Path(tmp)
        contexts = world(root)
        out = root / "board.html"
        times, render, markdown = [], [], []
        result = board(contexts, now=NOW, out=out)
        for _ in range(repeat):
            contexts = world_again(contexts)
            started = time.perf_counter()
            result = board(contexts, now=NOW, out=out)
            times.append(time.perf_counter() - started)
            started = time.perf_counter()
            board_render.html(result.board)
            render.append(time.perf_counter() - started)
            started = time.perf_counter()
            render_md.markdown(result.board)
            markdown.append(time.perf_counter() - started)
        size = out.stat().st_size
        say(f"board: {len(result.board.apps)} apps x {len(result.board.columns)} envs, page {size // 1024} KiB")
    extra = {"apps": APPS, "environments": len(ENVS), "entries_per_env": ENTRIES, "page_kib": size // 1024}
    return [
        Sample("board", "deployctl board (read + render + write)", tuple(times), {**extra, "target": f"< {TARGET} s"}),
        Sample("board", "board HTML render only", tuple(render), {"page_kib": size // 1024}),
        Sample("board", "board Markdown render only", tuple(markdown), {}),
    ]


def world_again(contexts: Contexts) -> Contexts:
    """The same environments for a new command: fresh contexts (nothing cached from the last run)."""
    fresh = Contexts(contexts.config, contexts.runner, contexts.reporter)
    for name, ctx in contexts._built.items():
        if not isinstance(ctx, FakeContext):
            raise TypeError(ctx)
        again = FakeContext(contexts.config, name, contexts.runner, s3=ctx.s3)
        again.fake_cluster = ctx.fake_cluster
        fresh._built[name] = again
    return fresh
