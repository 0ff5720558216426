"""EKS access: the cluster's endpoint from ``eks:DescribeCluster``, and tokens that renew themselves.

The kubeconfig written for an EKS environment holds no token. Its user is an ``exec`` credential
(``deployctl eks-token ENV``), which helm (client-go) and the kubernetes Python client run again
whenever the token they hold has expired. A token minted once would expire (~15 minutes) while a
run waits for the environment lock and then watches a long rollout.
"""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from deployctl.adapters.aws import AwsSession
from deployctl.adapters.aws_errors import errors, translate

EKS_TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 (a format prefix, not a secret)
PRESIGN_SECONDS = 60  # the presigned URL's own lifetime; EKS accepts the token ~15 minutes from signing
TOKEN_LIFETIME = timedelta(minutes=14)  # renew a minute before EKS stops accepting it
EXEC_API_VERSION = "client.authentication.k8s.io/v1beta1"


def token(aws: AwsSession, cluster_name: str) -> str:
    """An EKS bearer token: a presigned STS GetCallerIdentity URL with the ``x-k8s-aws-id`` header signed in."""
    sts = aws.client("sts")

    def add_cluster_header(request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = cluster_name

    sts.meta.events.register("before-sign.sts.GetCallerIdentity", add_cluster_header)
    try:
        url = sts.generate_presigned_url("get_caller_identity", Params={}, ExpiresIn=PRESIGN_SECONDS, HttpMethod="GET")
    except errors() as exc:
        raise translate(exc, f"sign an EKS token for {cluster_name}") from None
    finally:
        sts.meta.events.unregister("before-sign.sts.GetCallerIdentity", add_cluster_header)
    return token_from_presigned_url(str(url))


def token_from_presigned_url(url: str) -> str:
    return EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def exec_credential(token_value: str, *, now: datetime | None = None) -> dict[str, Any]:
    """What an exec credential plugin prints: the token and when to ask again."""
    expires = (now or datetime.now(UTC)) + TOKEN_LIFETIME
    return {
        "kind": "ExecCredential",
        "apiVersion": EXEC_API_VERSION,
        "spec": {},
        "status": {"expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"), "token": token_value},
    }


def token_command(env_name: str, config_path: Path) -> tuple[str, list[str]]:
    """The command (and args) the kubeconfig runs for a token: this interpreter running deployctl,
    so it works from a virtualenv that is not on PATH."""
    return sys.executable, ["-m", "deployctl", "--config", str(config_path), "eks-token", env_name]


def kubeconfig(*, name: str, endpoint: str, ca_data: str, command: str, args: list[str]) -> dict[str, Any]:
    """A kubeconfig document with one cluster, user and context, all named ``name``; the user is an
    exec credential (no token inside)."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": endpoint, "certificate-authority-data": ca_data}}],
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": EXEC_API_VERSION,
                        "command": command,
                        "args": args,
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def describe(aws: AwsSession, cluster_name: str) -> tuple[str, str]:
    """The cluster's API endpoint and CA data."""
    try:
        cluster = aws.client("eks").describe_cluster(name=cluster_name)["cluster"]
    except errors() as exc:
        error = translate(exc, f"describe EKS cluster {cluster_name!r}")
        if "ResourceNotFoundException" in str(exc):
            error.hint = "create it first (`deployctl apply ENV`), or fix environments.NAME.cluster.eks"
        raise error from None
    return str(cluster["endpoint"]), str(cluster.get("certificateAuthority", {}).get("data", ""))
