"""EKS access: the kubeconfig carries an exec credential (no token), tokens are presigned STS URLs,
and the ExecCredential document is what client-go and the Python client read."""

from __future__ import annotations

import base64
import json
import sys
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deployctl.adapters import eks
from deployctl.adapters.aws import AwsSession
from deployctl.config import Environment


def test_kubeconfig_runs_deployctl_for_a_token_and_holds_none() -> None:
    command, args = eks.token_command("prod", Path("/repo/pyproject.toml"))
    doc = eks.kubeconfig(name="api-prod", endpoint="https://x.eks", ca_data="Q0E=", command=command, args=args)
    assert doc["current-context"] == "api-prod"
    assert doc["clusters"][0]["cluster"] == {"server": "https://x.eks", "certificate-authority-data": "Q0E="}
    user = doc["users"][0]["user"]
    assert "token" not in user, "a token written once would expire during a long run"
    assert user["exec"]["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert user["exec"]["interactiveMode"] == "Never"
    # This interpreter, so it works from a virtualenv that is not on PATH.
    assert [user["exec"]["command"], *user["exec"]["args"]] == [
        sys.executable, "-m", "deployctl", "--config", "/repo/pyproject.toml", "eks-token", "prod",
    ]  # fmt: skip


def test_exec_credential_expires_before_eks_stops_accepting_the_token() -> None:
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    doc = eks.exec_credential("k8s-aws-v1.abc", now=now)
    assert doc["kind"] == "ExecCredential"
    assert doc["status"] == {"token": "k8s-aws-v1.abc", "expirationTimestamp": "2026-11-29T12:14:00Z"}
    json.dumps(doc)  # plain JSON


def test_token_is_presigned_sts_url_with_cluster_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEFAKEFAKEFAKE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-secret-fake-secret")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    env = Environment.model_validate(
        {"aws": {"region": "us-east-1"}, "cluster": {"eks": "api-dev"}, "namespace": "api", "values": "v.yaml"}
    )
    aws = AwsSession("dev", env)
    token = eks.token(aws, "api-dev")  # presigning is local: no network
    assert token.startswith("k8s-aws-v1.")
    encoded = token.removeprefix("k8s-aws-v1.")
    url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]
    assert "=" not in encoded  # padding stripped, as aws-iam-authenticator expects
    # a second token from the same session signs again (the header hook is not registered twice)
    assert eks.token(aws, "api-dev").startswith("k8s-aws-v1.")
