"""A new team's own repository in the sandbox, through the CLI only (issue 24, section 5): its [tool.deployctl]
with two apps on this repository's api chart, `sandbox up`, `sandbox image` for each app, `deploy dev`, a second
commit whose api build crash-loops failing `deploy dev` fast, and the first commit's release promoted to prod."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deployctl.sandbox import image_push, tools

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
APPS = ("api", "web")
CONFIG = """[tool.deployctl]
main_branch = "main"

[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "210987654321.dkr.ecr.eu-west-1.amazonaws.com", repository = "team/api" }

[tool.deployctl.apps.web]
chart = "charts/api"
release = "web"
image = { registry = "210987654321.dkr.ecr.eu-west-1.amazonaws.com", repository = "team/web" }
needs = ["api"]

[tool.deployctl.environments.dev]
aws = { region = "eu-west-1", role_arn = "arn:aws:iam::210987654321:role/team-dev" }
terraform = { root = "infra", backend = { bucket = "team-tfstate", key = "dev.tfstate", region = "eu-west-1" } }
cluster = { eks = "team-dev" }
namespace = "team"
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
aws = { region = "eu-west-1", role_arn = "arn:aws:iam::210987654321:role/team-prod" }
terraform = { root = "infra", backend = { bucket = "team-tfstate", key = "prod.tfstate", region = "eu-west-1" } }
cluster = { eks = "team-prod" }
namespace = "team"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
"""
DEV_SECTION = """{app}:
  replicaCount: 1
  autoscaling:
    enabled: false
  podDisruptionBudget:
    enabled: false
  resources:
    requests:
      cpu: 50m
      memory: 64Mi
"""
PROD_SECTION = """{app}:
  image:
    tag: ""
    digest: ""
  replicaCount: 2
  autoscaling:
    enabled: false
"""


@dataclass
class Team:
    repo: Path
    env: dict[str, str]  # the user's shell; after `eval "$(deployctl sandbox env)"` in ``shell``
    shell: dict[str, str]

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deployctl", *args],
            cwd=self.repo,
            env=env or self.shell,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def json(self, *args: str, code: int = 0) -> Any:
        """deployctl ``args`` with ``-o json``, which must exit ``code``; its document."""
        done = self.run("-o", "json", *args)
        assert done.returncode == code, f"{args}: exit {done.returncode}\n{done.stderr}"
        return json.loads(done.stdout)

    def git(self, *args: str) -> str:
        done = subprocess.run(["git", *args], cwd=self.repo, env=self.env, capture_output=True, text=True, check=True)
        return done.stdout.strip()


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    tools.ensure(progress=lambda _line: None)
    repo = tmp_path_factory.mktemp("team") / "shop"
    shutil.copytree(ROOT / "charts" / "api", repo / "charts" / "api")
    (repo / "infra").mkdir()
    (repo / "infra" / "main.tf").write_text('terraform {\n  backend "s3" {}\n}\n')
    (repo / "pyproject.toml").write_text(CONFIG)
    (repo / "values-dev.yaml").write_text("".join(DEV_SECTION.format(app=app) for app in APPS))
    (repo / "values-prod.yaml").write_text("".join(PROD_SECTION.format(app=app) for app in APPS))
    (repo / ".gitignore").write_text(".deployctl/\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DEPLOYCTL_", "AWS_", "TF_", "KUBECONFIG"))}
    env.update(NO_COLOR="1", GIT_AUTHOR_NAME="dev", GIT_AUTHOR_EMAIL="dev@example.com")
    env.update(GIT_COMMITTER_NAME="dev", GIT_COMMITTER_EMAIL="dev@example.com")
    made = Team(repo, env, env)
    made.git("init", "-q", "-b", "main")
    made.git("add", ".")
    made.git("commit", "-q", "-m", "the shop: api and web")
    up = made.run("sandbox", "up", env=env)
    assert up.returncode == 0, up.stderr
    try:
        exported = made.run("sandbox", "env", env=env)  # what `eval "$(deployctl sandbox env)"` leaves
        assert exported.returncode == 0, exported.stderr
        made.shell = dict(env)
        for line in exported.stdout.splitlines():
            if line.startswith("export "):
                key, _, value = line.removeprefix("export ").partition("=")
                made.shell[key] = value.strip("'")
        yield made
    finally:
        down = made.run("sandbox", "down", env=env)
        assert down.returncode == 0, down.stderr


def _images(team: Team, *extra: str) -> dict[str, dict[str, Any]]:
    return {app: team.json("sandbox", "image", app, *extra) for app in APPS}


def test_own_images_deploy_a_broken_build_fails_fast_and_the_good_release_is_promoted(team: Team) -> None:
    first = team.git("rev-parse", "HEAD")
    pushed = _images(team)
    registry = team.json("sandbox", "status")["registries"][0]
    for app, image in pushed.items():
        assert {k: image[k] for k in ("app", "repository", "tag", "commit", "behaviour")} == {
            "app": app,
            "repository": f"team/{app}",
            "tag": first,  # the full sha: what `deploy` resolves
            "commit": first,
            "behaviour": None,
        }
        assert image["registry"] == registry, "where the sandbox points the app's image registry"
        assert image_push.get_manifest(registry, f"team/{app}", first)[2] == image["digest"]
    text = team.run("sandbox", "image", "api")  # again: the same bytes, nothing to push
    assert text.returncode == 0, text.stderr
    assert text.stdout.splitlines() == [
        f"api: already there {registry}/team/api:{first}",
        f"  tag    {first}",
        f"  digest {pushed['api']['digest']}",
    ]

    deployed = team.json("deploy", "dev")
    assert {a["app"]: a["image"]["digest"] for a in deployed["apps"]} == {a: pushed[a]["digest"] for a in APPS}

    team.git("commit", "-q", "--allow-empty", "-m", "api: a bug")
    second = team.git("rev-parse", "HEAD")
    broken = team.json("sandbox", "image", "api", "--behaviour", "crashloop")
    fixed_web = team.json("sandbox", "image", "web")
    assert (broken["tag"], broken["behaviour"], fixed_web["tag"]) == (second, "crashloop", second)
    assert broken["digest"] != pushed["api"]["digest"] and fixed_web["digest"] != pushed["web"]["digest"]
    assert broken["digest"] in json.loads(Path(broken["state_file"]).read_text())["markers"]["crashloop"]
    started = time.monotonic()
    failed = team.json("deploy", "dev", code=1)
    seconds = time.monotonic() - started
    assert "CrashLoopBackOff" in json.dumps(failed["error"]), failed["error"]
    assert seconds < 120, f"deploy dev took {seconds:.0f}s to fail: not fast"
    os.write(2, f"\n[measure] deploy dev of a crash-looping own image failed after {seconds:.1f}s\n".encode())

    team.git("tag", "-a", "release-0.1.0", "-m", "release-0.1.0", first)
    promoted = team.json("promote", "release-0.1.0")
    assert promoted["outcome"] == "succeeded"
    assert {a["app"]: a["digest"] for a in promoted["plan"]["apps"]} == {a: pushed[a]["digest"] for a in APPS}
    prod = team.json("status", "prod")
    assert {a["app"]: a["digest"] for a in prod["apps"]} == {a: pushed[a]["digest"] for a in APPS}
