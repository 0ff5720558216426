"""A protected environment applies only plans made from a commit on the main branch (issue 16).

Real git (a repository with ``main`` and a side branch), real terraform (a root of ``terraform_data``
only: no provider to download) with its S3 backend on a moto server, deployctl as a subprocess. A plan
saved on the side branch is refused for prod with exit 4 and nothing is applied; the same plan made
after the branch is merged applies.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

from tests.lab.world import moto_server

pytestmark = pytest.mark.lab

BUCKET = "ancestry-tfstate"
STATE_KEY = "prod/terraform.tfstate"
MAIN_TF = """terraform {
  backend "s3" {}
}

resource "terraform_data" "marker" {
  input = "v1"
}
"""


@dataclass
class Repo:
    path: Path
    env: dict[str, str]
    moto_url: str

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], env=self.env, capture_output=True, text=True, check=True, timeout=60
        )
        return done.stdout.strip()

    def deployctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "deployctl", *args],
            cwd=self.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def state(self) -> dict[str, object] | None:
        s3 = boto3.client(
            "s3",
            endpoint_url=self.moto_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=STATE_KEY)
        if not listed.get("KeyCount"):
            return None
        document: dict[str, object] = json.loads(s3.get_object(Bucket=BUCKET, Key=STATE_KEY)["Body"].read())
        return document


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Repo]:
    if shutil.which("terraform") is None or shutil.which("git") is None:
        pytest.skip("needs terraform and git on PATH")
    with moto_server(tmp_path / "moto.log") as url:
        path = tmp_path / "repo"
        (path / "tf").mkdir(parents=True)
        (path / "tf" / "main.tf").write_text(MAIN_TF)
        backend = f'{{ bucket = "{BUCKET}", key = "{STATE_KEY}", region = "us-east-1" }}'
        (path / "pyproject.toml").write_text(
            "[tool.deployctl]\n"
            'main_branch = "main"\n'
            "[tool.deployctl.environments.prod]\n"
            f'aws = {{ region = "us-east-1", endpoint_url = "{url}" }}\n'
            f'terraform = {{ root = "tf", backend = {backend} }}\n'
            "protected = true\n"
        )
        (path / ".gitignore").write_text(".deployctl/\n")
        env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
            "AWS_DEFAULT_REGION": "us-east-1",
            "GIT_AUTHOR_NAME": "dev",
            "GIT_AUTHOR_EMAIL": "dev@example.com",
            "GIT_COMMITTER_NAME": "dev",
            "GIT_COMMITTER_EMAIL": "dev@example.com",
            "NO_COLOR": "1",
        }
        for name in ("AWS_PROFILE", "CI", "TF_DATA_DIR", "DEPLOYCTL_SANDBOX", "DEPLOYCTL_CONFIG"):
            env.pop(name, None)
        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=BUCKET)
        made = Repo(path=path, env=env, moto_url=url)
        made.git("init", "-q", "-b", "main")
        made.git("add", ".")
        made.git("commit", "-q", "-m", "prod infrastructure")
        yield made


def test_a_plan_from_a_side_branch_is_refused_for_prod(repo: Repo) -> None:
    repo.git("switch", "-q", "-c", "feature/bigger")
    (repo.path / "tf" / "main.tf").write_text(MAIN_TF.replace('"v1"', '"v2"'))
    repo.git("commit", "-q", "-am", "unreviewed change")
    side = repo.git("rev-parse", "HEAD")

    planned = repo.deployctl("plan", "prod", "--detailed-exitcode")
    assert planned.returncode == 3, planned.stderr
    assert json.loads((repo.path / ".deployctl/plans/prod/plan.json").read_text())["commit"] == side

    refused = repo.deployctl("apply", "prod")
    assert refused.returncode == 4, refused.stderr
    assert f"it was made at commit {side[:12]}, which is not on main" in refused.stderr
    assert "hint: merge the change to main first" in refused.stderr
    assert refused.stderr.count("refusing the saved plan") == 1, "the commit and fingerprint matched: one problem"
    assert repo.state() is None, "nothing was applied: terraform never wrote a state"

    # The same change, merged: a plan made from main applies.
    repo.git("switch", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge feature/bigger", "feature/bigger")
    assert repo.deployctl("plan", "prod").returncode == 0
    applied = repo.deployctl("apply", "prod")
    assert applied.returncode == 0, applied.stderr
    assert "prod: applied saved plan" in applied.stdout
    state = repo.state()
    assert state is not None and state["resources"], "the merged plan was applied"


def test_a_plan_of_an_unfetched_main_or_outside_git_is_refused(repo: Repo) -> None:
    """Without the main branch to check against (a shallow CI checkout of a tag, a detached fork), or without
    git at all, the ancestry cannot be proven: refused, with the fetch to run."""
    repo.git("switch", "-q", "--detach")
    repo.git("branch", "-q", "-m", "main", "trunk")
    assert repo.deployctl("plan", "prod").returncode == 0
    refused = repo.deployctl("apply", "prod")
    assert refused.returncode == 4, refused.stderr
    assert "is on main: neither origin/main nor main exists" in refused.stderr
    assert "(git fetch origin main)" in refused.stderr

    shutil.rmtree(repo.path / ".git")
    assert repo.deployctl("plan", "prod").returncode == 0
    outside = repo.deployctl("apply", "prod")
    assert outside.returncode == 4, outside.stderr
    assert "it was not made from a git commit (only plans made from main apply here)" in outside.stderr
    assert repo.state() is None
