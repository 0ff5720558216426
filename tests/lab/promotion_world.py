"""The promotion lab's world: a repository whose dev and prod are two namespaces of the lab's cluster, its ledgers and
locks in moto, its app's images pushed per commit (test_promotion_evidence and the modules that promote like it)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from deployctl.sandbox import image_push
from deployctl.sandbox.lab import Lab
from tests import values_files
from tests.lab.world import (
    ROOT,
    World,
    commit_all,
    empty_commit,
    git_identity,
    kubectl_json,
    tag_digest,
    use_lab_aws,
)

BUCKET = "evidence-tfstate"


@dataclass
class PromotionWorld(World):
    """dev and prod, two namespaces of the lab's cluster, one app (``api``) whose images CI pushes per commit."""

    lab: Lab
    registry: str
    repository: str
    namespace: str

    def commit(self, subject: str, seed: int) -> tuple[str, str]:
        """A commit on main and the image CI builds for it (tagged with the sha); returns (sha, digest)."""
        sha = empty_commit(self.repo, subject)
        return sha, image_push.push_image(self.registry, self.repository, sha, seed=seed).digest

    def kubectl_json(self, env: str, *args: str) -> Any:
        return kubectl_json(self.lab.kubeconfig, f"{self.namespace}-{env}", *args)

    def pod_digests(self, env: str) -> list[str]:
        """The digest every running, ready pod of ``env`` runs."""
        found = []
        for pod in self.kubectl_json(env, "get", "pods")["items"]:
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", []))
            if ready and pod["metadata"].get("deletionTimestamp") is None:
                found.append(pod["spec"]["containers"][0]["image"].partition("@")[2])
        return found

    def tag_digest(self, tag: str) -> str | None:
        return tag_digest(self.registry, self.repository, tag)

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
) -> PromotionWorld:
    use_lab_aws(monkeypatch, {**lab.env(), **git_identity("Ada", "ada@example.invalid")})
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
    commit_all(repo)
    return PromotionWorld(repo, capsys, lab, registry, repository, namespace)


@pytest.fixture
def promotion_world(
    tmp_path: Path,
    lab: Lab,
    registry: str,
    aws_reset: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> PromotionWorld:
    """A fresh promotion world (no soak) in the session's lab."""
    return make_world(tmp_path, lab, registry, aws_reset, monkeypatch, capsys)
