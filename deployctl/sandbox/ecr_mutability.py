"""ECR's tag mutability as moto holds it, for the registry front: a repository's setting, and the error an immutable
tag's overwrite gets."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

Mutability = Callable[[str], str]  # repository name -> "MUTABLE" | "IMMUTABLE"


class MutabilityUnknownError(Exception):
    """The emulated ECR could not be asked."""


def ecr_mutability(moto_url: str) -> Mutability:
    """Each repository's ``imageTagMutability`` as the emulated ECR holds it (asked on every tag push:
    terraform may change it at any time); a repository ECR does not know counts as MUTABLE."""
    lock = threading.Lock()
    clients: list[Any] = []

    def client() -> Any:
        with lock:  # boto3 is imported on the first tag push, so the front starts fast
            if not clients:
                import boto3

                clients.append(
                    boto3.client(
                        "ecr",
                        endpoint_url=moto_url,
                        region_name="us-east-1",
                        aws_access_key_id="testing",
                        aws_secret_access_key="testing",  # noqa: S106 (moto's documented fake credentials)
                    )
                )
            return clients[0]

    def mutability(name: str) -> str:
        ecr = client()
        try:
            repositories = ecr.describe_repositories(repositoryNames=[name])["repositories"]
        except ecr.exceptions.RepositoryNotFoundException:
            return "MUTABLE"
        except Exception as exc:  # any failure to ask (connection, throttling...) leaves it unknown
            raise MutabilityUnknownError(f"cannot ask the emulated ECR at {moto_url}: {exc}") from exc
        return str(repositories[0].get("imageTagMutability", "MUTABLE"))

    return mutability


def tag_invalid(name: str, tag: str) -> bytes:
    """ECR's answer to a manifest PUT on an existing tag of an IMMUTABLE repository."""
    message = (
        f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten "
        "because the repository is immutable."
    )
    return json.dumps({"errors": [{"code": "TAG_INVALID", "message": message}]}).encode()
