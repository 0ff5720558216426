"""Each of an environment's several clusters is reached in its own region with the environment's one session
(issue 19): ECR and EKS clients in the cluster's or registry's region, the kubeconfig's exec credential names the
cluster (``eks-token ENV --cluster NAME``), and the token is signed in the cluster's region. Signing is local: no
network."""

from __future__ import annotations

import base64
import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from deployctl.adapters import eks
from deployctl.app.context import EnvContext
from deployctl.cli.main import main
from deployctl.config import load
from deployctl.console import Console
from deployctl.core.refs import ImageRef
from deployctl.rollout import waves
from deployctl.runner import ProcessRunner

CONFIG = """
[tool.deployctl.apps.api]
chart = "charts/api"
release = "api"
image = { registry = "123456789012.dkr.ecr.us-east-1.amazonaws.com", repository = "api" }

[tool.deployctl.environments.prod]
aws = { region = "us-east-1" }
namespace = "api"
values = "values-prod.yaml"

[tool.deployctl.environments.prod.clusters.use1]
eks = "api-prod"

[tool.deployctl.environments.prod.clusters.euw1]
eks = "api-prod-eu-west-1"
region = "eu-west-1"
image_registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
wave = 2
"""


@pytest.fixture
def ctx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EnvContext:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-fake-secret")
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "DEPLOYCTL_SANDBOX", "DEPLOYCTL_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "pyproject.toml").write_text(CONFIG)
    return EnvContext(load(tmp_path / "pyproject.toml"), "prod", ProcessRunner(), Console())


def test_clients_in_a_cluster_or_registry_region_share_the_environment_session(ctx: EnvContext) -> None:
    assert ctx.aws_in("us-east-1") is ctx.aws, "the environment's own region: its own session"
    regional = ctx.aws_in("eu-west-1")
    assert regional is ctx.aws_in("eu-west-1"), "built once"
    assert regional.client("eks").meta.region_name == "eu-west-1"
    assert regional.session() is ctx.aws.session(), "no second AssumeRole"
    eu = ctx.endpoint(ImageRef("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "api"))
    us = ctx.endpoint(ImageRef("123456789012.dkr.ecr.us-east-1.amazonaws.com", "api"))
    assert eu.ecr is not None and eu.ecr.client.meta.region_name == "eu-west-1", "an ECR host is reached in its region"
    assert us.ecr is not None and us.ecr.client.meta.region_name == "us-east-1"


def test_each_cluster_pulls_from_its_registry(ctx: EnvContext) -> None:
    app = ctx.config.settings.apps["api"]
    use1, euw1 = ctx.targets()
    assert (use1.name, euw1.name, euw1.wave) == ("use1", "euw1", 2)
    assert ctx.image(app, target=use1).registry == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert ctx.image(app, target=euw1).registry == "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


def test_the_kubeconfig_of_a_cluster_asks_for_its_token(ctx: EnvContext, monkeypatch: pytest.MonkeyPatch) -> None:
    described: list[tuple[str, str]] = []

    def describe(aws: Any, name: str) -> tuple[str, str]:
        described.append((aws.client("eks").meta.region_name, name))
        return "https://eu.eks.example", "Q0E="

    monkeypatch.setattr(eks, "describe", describe)
    ctx._helm_major = 4  # no `helm version` here
    target = ctx.targets()[1]
    with ctx.cluster(target) as cluster:
        document = json.loads(Path(cluster.kube.kubeconfig).read_text())
    assert described == [("eu-west-1", "api-prod-eu-west-1")], "DescribeCluster in the cluster's region"
    assert document["users"][0]["user"]["exec"]["args"][-3:] == ["prod", "--cluster", "euw1"]


def test_eks_token_for_one_of_several_clusters_is_signed_in_its_region(
    ctx: EnvContext, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--config", str(ctx.config.path), "eks-token", "prod", "--cluster", "euw1"]) == 0
    token = json.loads(capsys.readouterr().out)["status"]["token"]
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    credential = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Credential"][0]
    assert "/eu-west-1/sts/" in credential
    assert main(["--config", str(ctx.config.path), "eks-token", "prod", "--cluster", "nope"]) == 2


def test_a_single_cluster_environment_is_one_target_named_none(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        CONFIG.split("[tool.deployctl.environments.prod.clusters.use1]")[0] + 'cluster = { eks = "api-prod" }\n'
    )
    single = EnvContext(load(tmp_path / "pyproject.toml"), "prod", ProcessRunner(), Console())
    assert single.targets() == (waves.Target(None, 1, "us-east-1", None),)
    assert not single.several
