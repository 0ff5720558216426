"""``deployctl build``: build the app image once, tagged with the commit sha, and record its digest."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from deployctl.app.base import pick_app
from deployctl.config import LoadedConfig
from deployctl.docker import build_argv, pushed_digest
from deployctl.errors import UsageError
from deployctl.runner import Runner


@dataclass(frozen=True)
class BuildResult:
    app: str
    commit: str
    tags: tuple[str, ...]
    digest: str | None
    pushed: bool
    record: str | None
    command: str = "build"

    def data(self) -> Mapping[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "command"}

    def text(self) -> Sequence[str]:
        lines = [f"built {self.app} at {self.commit[:12]}"]
        lines += [f"  {tag}" for tag in self.tags]
        if self.digest:
            lines.append(f"  digest {self.digest}")
        return lines


def current_commit(runner: Runner, cwd: Path) -> str:
    return runner.run(["git", "rev-parse", "HEAD"], cwd=cwd, hint="run inside the git repository").stdout.strip()


def build(
    config: LoadedConfig,
    runner: Runner,
    *,
    app_name: str | None,
    context: Path,
    push: bool,
    latest: bool = True,
    platforms: Sequence[str] = (),
) -> BuildResult:
    app_name, app = pick_app(config, app_name)
    if not context.is_dir():
        raise UsageError(f"build context {context} is not a directory", "pass --context DIR")
    image = app.image
    commit = current_commit(runner, config.root)
    tags = [f"{image.ref}:{commit}"] + ([f"{image.ref}:latest"] if latest else [])
    with tempfile.TemporaryDirectory(prefix="deployctl-build-") as tmp:
        metadata = Path(tmp) / "metadata.json"
        argv = build_argv(
            context=context, tags=tags, revision=commit, metadata_file=metadata, push=push, platforms=platforms
        )
        runner.run(argv, cwd=config.root, stream=True, hint="see the docker output above (-v shows it live)")
        digest = pushed_digest(metadata) if push else None
    record = None
    if digest is not None:
        builds = config.state_dir / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        path = builds / f"{app_name}-{commit}.json"
        path.write_text(
            json.dumps(
                {
                    "app": app_name,
                    "commit": commit,
                    "tags": tags,
                    "digest": digest,
                    "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
                },
                indent=2,
            ),
            encoding="utf-8",
        )
        record = str(path)
    return BuildResult(app_name, commit, tuple(tags), digest, push, record)
