"""Promotion on evidence, end to end in the lab: real helm, a real control plane with kwok, a real OCI
registry, moto S3 for locks and ledgers, a real git repository. dev and prod are two namespaces.

The gate reads what deployctl recorded about a digest in dev (healthy verdict, no later failure, soak),
not what dev's Deployment spec says this second; every success is checked against prod's pods."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.cli.main import main
from deployctl.sandbox import image_push
from deployctl.sandbox.lab import Lab
from tests import values_files

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "evidence-tfstate"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout.strip()


@dataclass
class World:
    repo: Path
    lab: Lab
    registry: str
    repository: str
    namespace: str
    capsys: pytest.CaptureFixture[str]

    def run(self, *args: str) -> tuple[int, Any, str]:
        self.capsys.readouterr()
        code = main(["--config", str(self.repo / "pyproject.toml"), "-o", "json", *args])
        captured = self.capsys.readouterr()
        return code, json.loads(captured.out) if captured.out.strip() else None, captured.err

    def commit(self, subject: str, seed: int) -> tuple[str, str]:
        """A commit on main and the image CI builds for it (tagged with the sha); returns (sha, digest)."""
        git(self.repo, "commit", "-q", "--allow-empty", "-m", subject)
        sha = git(self.repo, "rev-parse", "HEAD")
        return sha, image_push.push_image(self.registry, self.repository, sha, seed=seed).digest

    def kubectl_json(self, env: str, *args: str) -> Any:
        out = subprocess.run(
            ["kubectl", "--kubeconfig", str(self.lab.kubeconfig), "-n", f"{self.namespace}-{env}", *args, "-o", "json"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return json.loads(out)

    def pod_digests(self, env: str) -> list[str]:
        """The digest every running, ready pod of ``env`` runs."""
        found = []
        for pod in self.kubectl_json(env, "get", "pods")["items"]:
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
            if ready and pod["metadata"].get("deletionTimestamp") is None:
                found.append(pod["spec"]["containers"][0]["image"].partition("@")[2])
        return found

    def tag_digest(self, tag: str) -> str | None:
        try:
            data, _, _ = image_push.get_manifest(self.registry, self.repository, tag)
        except image_push.RegistryHTTPError:
            return None
        return "sha256:" + hashlib.sha256(data).hexdigest()

    def prod_values(self) -> str:
        return (self.repo / "values-prod.yaml").read_text()


def make_world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    moto: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *,
    soak_minutes: float = 0,
) -> World:
    for key, value in {
        **lab.env(),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # moto's documented fake credentials
        "AWS_DEFAULT_REGION": "us-east-1",
        "GIT_AUTHOR_NAME": "Ada",
        "GIT_AUTHOR_EMAIL": "ada@example.invalid",
        "GIT_COMMITTER_NAME": "Ada",
        "GIT_COMMITTER_EMAIL": "ada@example.invalid",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "DEPLOYCTL_CONFIG", "DEPLOYCTL_SANDBOX"):
        monkeypatch.delenv(key, raising=False)
    boto3.client("s3", endpoint_url=moto, region_name="us-east-1").create_bucket(Bucket=BUCKET)
    repo = tmp_path / "repo"
    repo.mkdir()
    suffix = uuid.uuid4().hex[:8]
    namespace, repository = f"e{suffix}", f"e{suffix}/api"
    aws = f'aws = {{ region = "us-east-1", endpoint_url = "{moto}" }}'
    cluster = f'cluster = {{ kubeconfig = "{lab.kubeconfig}", context = "{lab.context}" }}'

    def backend(env: str) -> str:
        return f'terraform = {{ root = "tf", backend = {{ bucket = "{BUCKET}", key = "{env}/terraform.tfstate", region = "us-east-1" }} }}'

    (repo / "pyproject.toml").write_text(
        f"""[tool.deployctl]
[tool.deployctl.apps.api]
chart = "{ROOT / "charts" / "api"}"
release = "api"
image = {{ registry = "{registry}", repository = "{repository}" }}

[tool.deployctl.environments.dev]
{aws}
{backend("dev")}
{cluster}
namespace = "{namespace}-dev"
values = "values-dev.yaml"

[tool.deployctl.environments.prod]
{aws}
{backend("prod")}
{cluster}
namespace = "{namespace}-prod"
values = "values-prod.yaml"
promote_from = "dev"
promote_soak_minutes = {soak_minutes}
"""
    )
    (repo / "values-dev.yaml").write_text(values_files.reference("values-dev.yaml"))
    # prod as shipped (its HPA keeps 3 replicas; the image block set by promote), the api section only
    (repo / "values-prod.yaml").write_text(values_files.reference("values-prod.yaml"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "init")
    return World(repo, lab, registry, repository, namespace, capsys)


@pytest.fixture
def world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> World:
    return make_world(tmp_path, lab, registry, aws_reset, monkeypatch, capsys)


def test_a_digest_that_failed_in_dev_is_refused_although_devs_spec_names_it(world: World) -> None:
    sha_a, digest_a = world.commit("feat: A", seed=301)
    assert world.run("deploy", "dev", "--image-tag", sha_a)[0] == 0
    sha_b, digest_b = world.commit("feat: B, crashes on start", seed=302)
    world.lab.mark_image(digest_b, "crashloop")
    code, _, err = world.run("deploy", "dev", "--image-tag", sha_b)
    assert code == 1, err

    spec = world.kubectl_json("dev", "get", "deployment", "api")["spec"]["template"]["spec"]["containers"][0]
    assert spec["image"].endswith(f"@{digest_b}"), "helm applied B: dev's spec names the broken digest"
    assert set(world.pod_digests("dev")) == {digest_a}, "A's pods keep serving"

    code, out, err = world.run("status", "dev")
    assert code == 1, "status exits 1 when an app is not healthy"
    (app,) = out["apps"]
    assert (app["healthy"], app["digest"], app["ready"]) == (False, digest_b, 0)
    (workload,) = app["workloads"]
    assert workload["rollout"] == "failed" and workload["reason"] == "CrashLoopBackOff"
    assert {"digest": digest_a, "pods": 1} in workload["serving"]
    world.capsys.readouterr()
    main(["--config", str(world.repo / "pyproject.toml"), "status", "dev"])
    text = world.capsys.readouterr().out
    assert "NOT HEALTHY" in text and f"serving now: 1 pod(s) of {digest_a}" in text and "0/1 pods" in text

    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0")
    values_before = world.prod_values()
    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 4, err
    assert "verified-in-source" in err and f"{digest_b} failed in dev and never rolled out healthy there: at " in err
    assert world.prod_values() == values_before
    assert world.tag_digest("release-1.0.0") is None, "no registry change"
    code, out, _ = world.run("history", "prod")
    assert (code, out["entries"]) == (0, []), "no ledger entry"
    assert world.kubectl_json("prod", "get", "deployments")["items"] == [], "nothing deployed to prod"


def test_promoting_a_digest_that_failed_in_dev_says_when_and_which_run_and_never_offers_to_skip(world: World) -> None:
    """Issue 24: the refusal used to say "no healthy rollout… deploy it to dev first" and offer --skip-dev-check."""
    sha_a, _ = world.commit("feat: A", seed=331)
    assert world.run("deploy", "dev", "--image-tag", sha_a)[0] == 0
    sha_b, digest_b = world.commit("feat: B, crashes on start", seed=332)
    world.lab.mark_image(digest_b, "crashloop")
    assert world.run("deploy", "dev", "--image-tag", sha_b)[0] == 1
    _, history, _ = world.run("history", "dev")
    (failure,) = [e for e in history["entries"] if e["outcome"] == "failed"]
    assert (failure["digest"], failure["verdict"]) == (digest_b, "failed")
    who = f"CI run {failure['ci_run_id']}" if failure["ci_run_id"] else failure["actor"]
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha_b)

    for args in (["--dry-run"], [], ["--skip-dev-check", "--reason", "hotfix"]):
        code, out, err = world.run("promote", "release-1.0.0", *args)
        assert code == 4, (args, err)
        said = (
            f"api: verified-in-source: {digest_b} failed in dev and never rolled out healthy there: "
            f"at {failure['recorded_at']} by {who} (entry {failure['id']}), verdict failed: "
        )
        assert out["error"]["message"].startswith(said), out["error"]["message"]
        assert "CrashLoopBackOff" in out["error"]["message"].splitlines()[0], "the failure's first line"
        assert out["error"]["hint"].startswith("roll forward: fix it on main"), out["error"]["hint"]
        assert "--skip-dev-check" not in err, "no flag skips a failure"
        assert "deploy it to dev first" not in err
    assert world.tag_digest("release-1.0.0") is None, "no registry change"
    assert world.run("history", "prod")[1]["entries"] == [], "no ledger entry"


def test_busy_trunk_promotes_the_tagged_commit_by_its_evidence_and_lists_its_changes(world: World) -> None:
    sha_d, digest_d = world.commit("feat: D (#11)", seed=311)
    assert world.run("deploy", "dev", "--image-tag", sha_d)[0] == 0
    git(world.repo, "tag", "-a", "release-1.0.0", "-m", "release-1.0.0", sha_d)
    sha_e, digest_e = world.commit("feat: E (#12)", seed=312)
    assert world.run("deploy", "dev", "--image-tag", sha_e)[0] == 0  # main moved on: dev runs E now
    assert set(world.pod_digests("dev")) == {digest_e}

    code, out, err = world.run("promote", "release-1.0.0")
    assert code == 0, err
    assert out["outcome"] == "succeeded"
    evidence = out["plan"]["apps"][0]["evidence"]
    assert evidence["digest"] == digest_d and evidence["still_running"] is False and evidence["verified_at"]
    assert {g["name"]: g["ok"] for g in out["plan"]["gates"]}["verified-in-source"] is True
    assert all(not g["overridden"] for g in out["plan"]["gates"])
    # The claim is checked against the cluster and the registry: prod runs D's exact bytes.
    assert world.pod_digests("prod") == [digest_d] * 3, "prod's HPA (minReplicas 3) was waited for"
    assert world.tag_digest("release-1.0.0") == digest_d
    code, status, _ = world.run("status", "prod")
    assert code == 0 and status["apps"][0]["healthy"] is True and status["apps"][0]["matches_values"] is True

    # The next release lists exactly the commits between the two: E and F, newest first, with PR numbers.
    sha_f, _ = world.commit("fix: F (#13)", seed=313)
    assert world.run("deploy", "dev", "--image-tag", sha_f)[0] == 0
    git(world.repo, "tag", "-a", "release-1.1.0", "-m", "release-1.1.0", sha_f)
    code, out, err = world.run("promote", "release-1.1.0", "--dry-run")
    assert code == 0, err
    changes = out["plan"]["changes"]
    assert (changes["base"], changes["head"], changes["total"]) == (sha_d, sha_f, 2)
    assert [(c["sha"], c["pr"], c["author"]) for c in changes["commits"]] == [(sha_f, 13, "Ada"), (sha_e, 12, "Ada")]
    assert changes["warnings"] == []


def test_soak_time_is_required_then_met(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    soak = 0.25  # minutes: long enough to refuse right after the deploy, short enough for the suite
    world = make_world(tmp_path, lab, registry, aws_reset, monkeypatch, capsys, soak_minutes=soak)
    sha, digest = world.commit("feat: G", seed=321)
    assert world.run("deploy", "dev", "--image-tag", sha)[0] == 0
    deployed = time.monotonic()  # the healthy verdict was recorded before deploy returned
    git(world.repo, "tag", "-a", "release-2.0.0", "-m", "release-2.0.0")
    code, _, err = world.run("promote", "release-2.0.0")
    assert code == 4, err
    assert "of the 15s required (promote_soak_minutes: its latest healthy period" in err and "to go" in err
    assert world.tag_digest("release-2.0.0") is None

    time.sleep(max(0.0, soak * 60 - (time.monotonic() - deployed)) + 1)
    code, out, err = world.run("promote", "release-2.0.0")
    assert code == 0, err
    assert out["plan"]["apps"][0]["evidence"]["ran_for_seconds"] >= soak * 60
    assert world.pod_digests("prod") == [digest] * 3, "prod's HPA (minReplicas 3) was waited for"
