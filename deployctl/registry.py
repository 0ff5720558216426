"""OCI distribution API: resolve a tag to the digest of its manifest.

A tag is mutable; a digest names exact bytes. ``deploy`` resolves the tag once,
here, and from then on only the digest travels (helm values, history, status).

Real ECR (``<acct>.dkr.ecr.<region>.amazonaws.com``) wants basic auth ``AWS:<token>``
from ``ecr:GetAuthorizationToken``; the sandbox registry is plain http on 127.0.0.1
with no auth.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from deployctl.errors import OperationError, UsageError
from deployctl.model import DIGEST_RE, ImageRef

if TYPE_CHECKING:
    from deployctl.config import Environment
    from deployctl.redact import Redactor

log = logging.getLogger(__name__)

# Index types first: a multi-arch image (or a BuildKit build with attestations) is an index,
# and its digest (not one platform's manifest) is what must be deployed and promoted.
MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
ECR_HOST_RE = re.compile(r"^\d{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?$")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def base_url(registry: str) -> str:
    """``http://`` for a registry on this machine (the sandbox), ``https://`` otherwise."""
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry.split("]")[0] + "]"
    return f"{'http' if host in _LOCAL_HOSTS else 'https'}://{registry}"


def is_ecr(registry: str) -> bool:
    return bool(ECR_HOST_RE.match(registry))


def ecr_authorization(env: Environment, redactor: Redactor | None = None) -> str:
    """``Basic <base64(AWS:token)>`` from ``ecr:GetAuthorizationToken`` (valid 12 h), registered as a secret."""
    from deployctl.aws import client

    try:
        data = client(env, "ecr").get_authorization_token()["authorizationData"][0]
    except Exception as exc:  # botocore errors: credentials, endpoint, permissions
        raise OperationError(
            f"cannot get an ECR authorization token: {exc}",
            "check the environment's AWS credentials and ecr:GetAuthorizationToken permission",
        ) from None
    token = str(data["authorizationToken"])
    if redactor is not None:
        redactor.add(token)
        redactor.add(base64.b64decode(token).decode().partition(":")[2])
    return f"Basic {token}"


def authorization_for(registry: str, env: Environment, redactor: Redactor | None = None) -> str | None:
    return ecr_authorization(env, redactor) if is_ecr(registry) else None


def resolve(image: ImageRef, *, authorization: str | None = None, timeout: float = 15.0) -> str:
    """The digest the registry serves for ``image.tag`` (``HEAD /v2/<repo>/manifests/<tag>``).

    Raises UsageError (exit 2) when the tag does not exist, OperationError when the
    registry cannot be reached or refuses us.
    """
    if image.tag is None:
        raise UsageError(f"{image.name}: no tag to resolve")
    url = f"{base_url(image.registry)}/v2/{image.repository}/manifests/{image.tag}"
    headers = {"Accept": ", ".join(MANIFEST_TYPES)}
    if authorization:
        headers["Authorization"] = authorization
    for method in ("HEAD", "GET"):
        request = urllib.request.Request(url, method=method, headers=headers)  # noqa: S310 (http(s) only: base_url)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                digest = response.headers.get("Docker-Content-Digest")
                body = response.read() if method == "GET" else b""
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise UsageError(
                    f"image tag {image.tag!r} not found in {image.name}",
                    "push the image first (CI builds it on every commit), or pass --image-tag/--digest "
                    "of an image that exists",
                ) from None
            if exc.code in (401, 403):
                raise OperationError(
                    f"registry {image.registry} refused access to {image.repository} (HTTP {exc.code})",
                    "check the registry credentials (ECR: ecr:GetAuthorizationToken and the repository policy)",
                ) from None
            raise OperationError(f"registry {image.registry} answered HTTP {exc.code} for {url}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise OperationError(
                f"cannot reach registry {image.registry}: {reason}",
                "check the network and the app's image.registry in the configuration",
            ) from None
        if digest and DIGEST_RE.match(digest):
            return digest
        if method == "GET" and body:
            # Some registries omit the header; the digest is the sha256 of the manifest bytes.
            return "sha256:" + hashlib.sha256(body).hexdigest()
        log.debug("registry %s sent no Docker-Content-Digest on HEAD; trying GET", image.registry)
    raise OperationError(f"registry {image.registry} returned no digest for {image}")
