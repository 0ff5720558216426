"""`plan dev`'s helm diff renders the image a deploy would roll out (the checked-out commit's, or --image-tag's)
where it exists, and says the image change per app; where it does not exist yet (a pull request: CI builds
images on main), it renders the live digest and says so. A promotion target keeps its values file's pin."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from deployctl.adapters.helm import Release
from deployctl.app import plan as plan_app
from deployctl.config import load
from deployctl.runner import ProcessRunner
from tests.unit.fakes import FakeCluster, FakeContext, FakeS3

ROOT = Path(__file__).resolve().parents[2]
LIVE = "sha256:" + "1" * 64
BUILT = "sha256:" + "2" * 64
TAGGED = "sha256:" + "3" * 64
CONFIG = f"""
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "registry.example:5000", repository = "api" }}

[tool.deployctl.environments.dev]
aws = {{ region = "us-east-1" }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
aws = {{ region = "us-east-1" }}
cluster = {{ kubeconfig = "kubeconfig" }}
namespace = "api"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
"""


@dataclass
class DiffCluster(FakeCluster):
    """The fake cluster with a live release of ``api`` running LIVE, and a chart that renders the pinned image."""

    def release_values(self, name: str) -> dict[str, Any]:
        return {"image": {"repository": "registry.example:5000/api", "digest": LIVE}} if name in self.releases else {}

    def release_manifest(self, name: str) -> str:
        del name
        return self._deployment(LIVE)

    def template(
        self,
        *,
        release: str,
        chart: str | Path,
        values_files: Sequence[Path],
        set_string: Mapping[str, str],
        version: str | None = None,
    ) -> str:
        super().template(
            release=release, chart=chart, values_files=values_files, set_string=set_string, version=version
        )
        pins = yaml.safe_load(values_files[-1].read_text())
        return self._deployment(str(pins["image"]["digest"]))

    def reader(self) -> Any:
        live = yaml.safe_load(self._deployment(LIVE))

        class Reader:
            def get(self, *_where: str | None) -> Any:  # (api_version, kind, name, namespace)
                return live

        return Reader()

    @staticmethod
    def _deployment(digest: str) -> str:
        return (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n"
            f"      containers:\n        - name: api\n          image: registry.example:5000/api@{digest}\n"
        )


def _git(repo: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
    done = subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env)
    return done.stdout.strip()


def _context(repo: Path, env: str, registry: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FakeContext:
    ctx = FakeContext(load(repo / "pyproject.toml"), env, ProcessRunner(), s3=FakeS3())
    cluster = DiffCluster(f"{env}-ns", ctx.s3, env)
    cluster.releases["api"] = Release("api", f"{env}-ns", 3, "deployed")
    ctx.fake_cluster = cluster

    class Endpoint:
        def resolve(self, tag: str) -> str | None:
            return registry.get(tag)

    monkeypatch.setattr(ctx, "endpoint", lambda _image: Endpoint())
    return ctx


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    (tmp_path / "values-dev.yaml").write_text("api:\n  replicaCount: 1\n")
    (tmp_path / "values-prod.yaml").write_text(f"api:\n  image:\n    tag: release-1.0.0\n    digest: {LIVE}\n")
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "one")
    return tmp_path


def test_the_plan_renders_the_commits_image_and_says_the_change(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    result = plan_app.plan(_context(repo, "dev", {head: BUILT}, monkeypatch))
    assert result.helm is not None, result.helm_error
    (app,) = result.helm.apps
    assert app.image is not None
    assert (app.image.live, app.image.rendered) == (LIVE, BUILT)
    assert app.image.source == f"commit {head[:12]} (registry.example:5000/api:{head})"
    assert app.image_values["image.tag"] == head and app.image_values["build.gitSha"] == head
    assert app.changed, "the Deployment's image differs"
    text = "\n".join(result.text())
    assert f"  image: {LIVE} -> {BUILT} from commit {head[:12]}" in text
    diff = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("+") and f"image: registry.example:5000/api@{BUILT}" in line for line in diff), text
    assert any(line.startswith("-") and f"image: registry.example:5000/api@{LIVE}" in line for line in diff), text
    assert result.data()["helm"]["apps"][0]["image"] == {
        "live": LIVE,
        "rendered": BUILT,
        "from": f"commit {head[:12]} (registry.example:5000/api:{head})",
        "note": None,
    }


def test_an_image_tag_names_the_image(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = plan_app.plan(_context(repo, "dev", {"v7": TAGGED}, monkeypatch), image_tag="v7")
    assert result.helm is not None
    image = result.helm.apps[0].image
    assert image is not None and image.rendered == TAGGED
    assert image.source == "--image-tag v7 (registry.example:5000/api:v7)"


def test_without_an_image_for_the_commit_it_renders_the_live_one_and_says_why(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    result = plan_app.plan(_context(repo, "dev", {}, monkeypatch))
    assert result.helm is not None
    (app,) = result.helm.apps
    assert app.image is not None and (app.image.live, app.image.rendered) == (LIVE, LIVE)
    assert not app.changed
    assert f"no image for commit {head[:12]} yet (CI builds one per commit on main)" in "\n".join(result.text())


def test_a_promotion_target_keeps_its_pinned_image(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    head = _git(repo, "rev-parse", "HEAD")
    result = plan_app.plan(_context(repo, "prod", {head: BUILT}, monkeypatch))
    assert result.helm is not None
    image = result.helm.apps[0].image
    assert image is not None and (image.rendered, image.source) == (LIVE, "the values file")
