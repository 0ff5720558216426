"""``deployctl promote`` and ``deployctl history`` end to end against the lab's registry and moto
(S3 for the ledger and the lock), with a real git repository; ``--no-deploy`` (the cluster part is
the deploy feature's, tested there)."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.adapters import registry as reg
from deployctl.app.context import EnvContext
from deployctl.cli.main import main
from deployctl.config import load
from deployctl.console import Console
from deployctl.ledger.entry import Entry
from deployctl.ledger.store import Ledger
from deployctl.runner import ProcessRunner
from deployctl.sandbox import image_push
from tests import values_files

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "promote-tfstate"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class World:
    repo: Path
    registry: str
    repository: str
    commits: dict[str, str]  # release tag -> commit
    pushed: dict[str, image_push.PushedImage]  # release tag -> the image built for its commit
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, Any, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.repo / "pyproject.toml"), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    def tag_digest(self, tag: str) -> str | None:
        try:
            data, _, _ = image_push.get_manifest(self.registry, self.repository, tag)
        except image_push.RegistryHTTPError:
            return None
        return reg.digest_of(data)

    def ledger(self, env: str) -> Ledger:
        config = load(self.repo / "pyproject.toml")
        return EnvContext(config, env, ProcessRunner(), Console()).ledger

    def values(self) -> str:
        return (self.repo / "values-prod.yaml").read_text()


@pytest.fixture
def world(
    tmp_path: Path, registry: str, aws_reset: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> World:
    return make_world(tmp_path, registry, aws_reset, monkeypatch, capsys)


def make_world(
    tmp_path: Path,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    prod_registry: str | None = None,
) -> World:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    boto3.client("s3", endpoint_url=aws_reset, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    repository = f"p{uuid.uuid4().hex[:8]}/api"
    repo = tmp_path / "repo"
    repo.mkdir()
    backend = f'backend = {{ bucket = "{BUCKET}", key = "ENV/terraform.tfstate", region = "us-east-1" }}'
    aws = f'aws = {{ region = "us-east-1", endpoint_url = "{aws_reset}" }}'
    (repo / "pyproject.toml").write_text(
        f"""[tool.deployctl]
main_branch = "main"

[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = {{ registry = "{registry}", repository = "{repository}" }}

[tool.deployctl.environments.dev]
{aws}
terraform = {{ root = "tf/dev", {backend.replace("ENV", "dev")} }}
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
{aws}
terraform = {{ root = "tf/prod", {backend.replace("ENV", "prod")} }}
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = 0  # promotes right after dev: no soak, on purpose
"""
        + (f'image_registry = "{prod_registry}"\n' if prod_registry else "")
    )
    (repo / "values-prod.yaml").write_text(values_files.reference("values-prod.yaml"))
    (repo / "values-dev.yaml").write_text(values_files.reference("values-dev.yaml"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    commits: dict[str, str] = {}
    pushed: dict[str, image_push.PushedImage] = {}
    for n, (release, built) in enumerate(
        [("release-1.0.0", True), ("release-1.1.0", False), ("release-1.2.0", True), ("release-1.3.0", True)]
    ):
        git(repo, "commit", "-q", "--allow-empty", "-m", f"change {n}")
        git(repo, "tag", "-a", release, "-m", release)  # annotated: must be dereferenced to the commit
        commits[release] = git(repo, "rev-parse", "HEAD")
        if built:
            pushed[release] = image_push.push_image(
                registry, repository, commits[release], multi_platform=True, attestation=True, seed=n, layer_size=2048
            )
    git(repo, "checkout", "-q", "-b", "side")
    git(repo, "commit", "-q", "--allow-empty", "-m", "unmerged")
    git(repo, "tag", "release-9.0.0")
    commits["release-9.0.0"] = git(repo, "rev-parse", "HEAD")
    pushed["release-9.0.0"] = image_push.push_image(registry, repository, commits["release-9.0.0"], seed=99)
    git(repo, "checkout", "-q", "main")
    w = World(repo, registry, repository, commits, pushed, capsys)
    w.ledger("dev").append(
        Entry(
            env="dev",
            app="api",
            action="deploy",
            outcome="succeeded",
            verdict="healthy",
            digest=pushed["release-1.0.0"].digest,
        )
    )
    return w


def test_promote_retags_byte_exact_records_and_is_idempotent(world: World) -> None:
    digest = world.pushed["release-1.0.0"].digest
    code, out, err = world.run("promote", "release-1.0.0", "--no-deploy")
    assert code == 0, err
    assert out["outcome"] == "moved", "recorded, not deployed (issue 25)"
    assert out["plan"]["commit"] == world.commits["release-1.0.0"]
    assert out["plan"]["apps"][0]["digest"] == digest
    assert out["transfers"][0]["mode"] == "oci-retag"
    assert out["transfers"][0]["bytes_copied"] == 0
    data, _, _ = image_push.get_manifest(world.registry, world.repository, "release-1.0.0")
    assert data == world.pushed["release-1.0.0"].manifest
    values = world.values()
    assert f'  digest: "{digest}"' in values
    assert '  tag: "release-1.0.0"' in values
    assert "# Set by `deployctl promote`; do not edit by hand." in values  # comments kept

    # Re-run: exit 0, nothing changes, and a no-op adds nothing to the history.
    code, out, err = world.run("promote", "release-1.0.0", "--no-deploy")
    assert code == 0, err
    assert out["outcome"] == "noop"
    assert world.values() == values
    code, out, _ = world.run("history", "prod")
    assert code == 0
    assert [(e["action"], e["outcome"]) for e in out["entries"]] == [("promote", "moved")], "a no-op records nothing"
    newest = out["entries"][0]
    assert (newest["release"], newest["digest"], newest["source_env"]) == ("release-1.0.0", digest, "dev")


def test_dry_run_changes_nothing(world: World) -> None:
    before = world.values()
    code, out, err = world.run("promote", "release-1.0.0", "--dry-run", "--no-deploy")
    assert code == 0, err
    assert out["outcome"] == "planned"
    assert '+    tag: "release-1.0.0"' in out["plan"]["values"]["diff"]
    assert world.values() == before
    assert world.tag_digest("release-1.0.0") is None
    assert world.ledger("prod").read().entries == []


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["release-1.0"], 2, "expected release-X.Y.Z"),
        (["release-1.0.0-rc.1"], 2, "pre-release"),
        (["release-9.0.0"], 4, "not on main"),
        (["release-1.1.0"], 4, "build-image on main did not push"),
        (["release-1.2.0"], 4, "--skip-dev-check"),
        (["release-1.2.0", "--skip-dev-check"], 2, "needs --reason"),
        (["release-nope"], 2, "malformed release tag"),
    ],
)
def test_refusals_change_nothing(world: World, args: list[str], code: int, needle: str) -> None:
    before = world.values()
    got, out, err = world.run("promote", *args, "--no-deploy")
    assert got == code, err
    assert needle in err
    assert out["ok"] is False
    assert world.values() == before
    for release in ("release-1.0.0", "release-1.1.0", "release-1.2.0", "release-9.0.0"):
        assert world.tag_digest(release) is None


def test_image_missing_names_the_tag_looked_for(world: World) -> None:
    _, _, err = world.run("promote", "release-1.1.0", "--no-deploy")
    assert f"{world.registry}/{world.repository}:{world.commits['release-1.1.0']}" in err


def test_skip_dev_check_with_reason_is_recorded(world: World) -> None:
    code, _, err = world.run("promote", "release-1.2.0", "--no-deploy", "--skip-dev-check", "--reason", "hotfix INC-1")
    assert code == 0, err
    entry = world.ledger("prod").read().entries[0]
    assert entry.outcome == "moved"
    assert [(o.flag, o.reason) for o in entry.overrides] == [("--skip-dev-check", "hotfix INC-1")]


def test_downgrade_is_refused_unless_allowed(world: World) -> None:
    dev = world.ledger("dev")
    dev.append(
        Entry(
            env="dev",
            app="api",
            action="deploy",
            outcome="succeeded",
            verdict="healthy",
            digest=world.pushed["release-1.3.0"].digest,
        )
    )
    assert world.run("promote", "release-1.3.0", "--no-deploy")[0] == 0
    dev.append(
        Entry(
            env="dev",
            app="api",
            action="deploy",
            outcome="succeeded",
            verdict="healthy",
            digest=world.pushed["release-1.2.0"].digest,
        )
    )
    before = world.values()
    code, _, err = world.run("promote", "release-1.2.0", "--no-deploy")
    assert code == 4
    assert "not newer than 1.3.0" in err
    assert "--allow-downgrade" in err
    assert world.values() == before
    assert world.tag_digest("release-1.2.0") is None
    code, _, err = world.run("promote", "release-1.2.0", "--no-deploy", "--allow-downgrade", "--reason", "rollback")
    assert code == 0, err
    assert world.tag_digest("release-1.2.0") == world.pushed["release-1.2.0"].digest


def test_release_tag_taken_by_another_digest_is_refused(world: World) -> None:
    image_push.retag(world.registry, world.repository, world.pushed["release-1.2.0"].digest, "release-1.0.0")
    before = world.values()
    code, _, err = world.run("promote", "release-1.0.0", "--no-deploy", "--skip-dev-check", "--reason", "x")
    assert code == 4
    assert "immutable" in err
    assert "cannot be overridden" in err
    assert world.tag_digest("release-1.0.0") == world.pushed["release-1.2.0"].digest
    assert world.values() == before


def test_commit_records_the_values_change_in_git(world: World) -> None:
    code, _, err = world.run("promote", "release-1.0.0", "--no-deploy", "--commit")
    assert code == 0, err
    digest = world.pushed["release-1.0.0"].digest
    assert (
        git(world.repo, "log", "-1", "--format=%s") == f"chore(release): promote release-1.0.0 to prod (api {digest})"
    )
    assert git(world.repo, "status", "--porcelain", "values-prod.yaml") == ""


def test_history_text_and_limit(world: World) -> None:
    assert world.run("promote", "release-1.0.0", "--no-deploy")[0] == 0
    assert world.run("promote", "release-1.2.0", "--no-deploy", "--skip-dev-check", "--reason", "x")[0] == 0
    code, out, _ = world.run("history", "prod", "--limit", "1")
    assert code == 0
    assert len(out["entries"]) == 1
    assert out["entries"][0]["release"] == "release-1.2.0"
    world.capsys.readouterr()
    assert main(["--config", str(world.repo / "pyproject.toml"), "history", "prod"]) == 0
    text = world.capsys.readouterr().out
    assert "promote" in text
    assert "release-1.0.0" in text


def test_promote_to_an_environment_with_its_own_registry_copies_byte_exact(
    tmp_path: Path,
    registry: str,
    registry2: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """prod in another account: `image_registry` makes promote copy the index (children and blobs) there."""
    world = make_world(tmp_path, registry, aws_reset, monkeypatch, capsys, prod_registry=registry2)
    source = world.pushed["release-1.0.0"]
    code, out, err = world.run("promote", "release-1.0.0", "--no-deploy")
    assert code == 0, err
    assert out["transfers"][0]["mode"] == "copy"
    assert out["transfers"][0]["blobs_copied"] > 0
    data, _, _ = image_push.get_manifest(registry2, world.repository, "release-1.0.0")
    assert reg.digest_of(data) == source.digest  # the same bytes, in the other registry
    assert world.tag_digest("release-1.0.0") is None  # the source registry was not retagged
    # again: everything is there, nothing is copied
    code, out, err = world.run("promote", "release-1.0.0", "--no-deploy")
    assert code == 0, err
    assert out["outcome"] == "noop"


def test_push_records_the_values_edit_on_a_main_that_moved_meanwhile(world: World, tmp_path: Path) -> None:
    """In CI the values edit is made on a runner: --push commits it and pushes it to main, rebasing onto
    commits that landed meanwhile (never a force push)."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(world.repo), str(origin))
    git(world.repo, "remote", "add", "origin", str(origin))
    git(world.repo, "fetch", "-q", "origin")
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(origin), str(other))
    git(other, "commit", "-q", "--allow-empty", "-m", "someone else's change")
    git(other, "push", "-q", "origin", "main")
    theirs = git(other, "rev-parse", "HEAD")

    code, out, err = world.run("promote", "release-1.0.0", "--no-deploy", "--push")
    assert code == 0, err
    pushed = git(origin, "rev-parse", "main")
    assert git(origin, "log", "-1", "--format=%s", "main").startswith("chore(release): promote release-1.0.0 to prod")
    assert git(origin, "merge-base", "--is-ancestor", theirs, pushed) == "", "rebased onto main, not forced over it"
    assert git(origin, "show", f"{pushed}:values-prod.yaml") == world.values().rstrip("\n")
    assert [s["name"] for s in out["steps"]][-1] == "push"
