"""The ECR API (boto3, imported on first use): tags, manifests verbatim, tag mutability, auth tokens.

Same-repository promotion is ``BatchGetImage`` then ``PutImage`` with the exact manifest string and
its media type (metadata only, no blob moves).
"""

from __future__ import annotations

import base64
import fnmatch
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployctl.adapters.registry.errors import RegistryError, tag_conflict
from deployctl.adapters.registry.manifest import MANIFEST_TYPES, ManifestBytes, media_type_of

if TYPE_CHECKING:
    from deployctl.redact import Redactor

ECR_HOST_RE = re.compile(
    r"\A(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\Z"
)


def is_ecr_host(host: str) -> bool:
    return ECR_HOST_RE.match(host) is not None


def ecr_account(host: str) -> str | None:
    match = ECR_HOST_RE.match(host)
    return match["account"] if match else None


def ecr_region(host: str) -> str | None:
    match = ECR_HOST_RE.match(host)
    return match["region"] if match else None


@dataclass(frozen=True)
class TagMutability:
    """A repository's ``imageTagMutability`` and its exclusion filters (wildcards)."""

    setting: str  # MUTABLE | IMMUTABLE | MUTABLE_WITH_EXCLUSION | IMMUTABLE_WITH_EXCLUSION
    exclusions: tuple[str, ...] = ()

    def allows_moving(self, tag: str) -> bool:
        """Whether an existing ``tag`` may be pushed again (pointed at another image)."""
        excluded = any(fnmatch.fnmatchcase(tag, pattern) for pattern in self.exclusions)
        if self.setting == "MUTABLE":
            return True
        if self.setting == "MUTABLE_WITH_EXCLUSION":
            return not excluded
        if self.setting == "IMMUTABLE_WITH_EXCLUSION":
            return excluded
        return False  # IMMUTABLE, and anything newer we do not know: assume the strict reading


@dataclass
class Ecr:
    """One ECR registry (an account in a region) through its API."""

    client: Any
    registry_id: str | None = None

    @staticmethod
    def _errors() -> tuple[type[Exception], ...]:
        from botocore.exceptions import BotoCoreError, ClientError

        return (BotoCoreError, ClientError)

    def _ids(self) -> dict[str, str]:
        return {"registryId": self.registry_id} if self.registry_id else {}

    def describe(self, repository: str, tag: str) -> str | None:
        """The digest ``tag`` points at, or None (no such tag or repository)."""
        try:
            response = self.client.describe_images(
                repositoryName=repository, imageIds=[{"imageTag": tag}], **self._ids()
            )
        except self._errors() as exc:
            if ecr_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return None
            raise ecr_error(exc, f"describe {repository}:{tag}") from None
        details = response.get("imageDetails", ())
        return str(details[0]["imageDigest"]) if details else None

    def mutability(self, repository: str) -> TagMutability:
        """The repository's tag mutability (``DescribeRepositories``)."""
        try:
            response = self.client.describe_repositories(repositoryNames=[repository], **self._ids())
        except self._errors() as exc:
            raise ecr_error(exc, f"describe repository {repository}") from None
        found = response["repositories"][0]
        filters = found.get("imageTagMutabilityExclusionFilters") or ()
        return TagMutability(
            str(found.get("imageTagMutability", "MUTABLE")), tuple(str(f.get("filter", "")) for f in filters)
        )

    def get(self, repository: str, *, digest: str | None = None, tag: str | None = None) -> tuple[ManifestBytes, str]:
        """The manifest string verbatim and ECR's digest for it."""
        image_id = {"imageDigest": digest} if digest else {"imageTag": str(tag)}
        try:
            response = self.client.batch_get_image(
                repositoryName=repository,
                imageIds=[image_id],
                acceptedMediaTypes=list(MANIFEST_TYPES),
                **self._ids(),
            )
        except self._errors() as exc:
            raise ecr_error(exc, f"get {repository}@{digest or tag}") from None
        images = response.get("images", ())
        if not images:
            failure = (response.get("failures") or [{}])[0]
            raise RegistryError(
                f"ECR has no image {repository}@{digest or tag}: {failure.get('failureReason', 'not found')}"
            )
        image = images[0]
        text: str = image["imageManifest"]
        media_type = image.get("imageManifestMediaType") or media_type_of(text.encode(), None)
        return ManifestBytes(text.encode(), media_type), str(image["imageId"]["imageDigest"])

    def put(self, repository: str, tag: str, manifest: ManifestBytes, digest: str, *, name: str = "") -> bool:
        """Tag ``digest`` as ``tag`` with the exact manifest bytes: True when PUT, False when ``tag``
        already named ``digest``. A tag at another digest is refused (``PolicyError``)."""
        name = name or repository
        current = self.describe(repository, tag)
        if current == digest:
            return False
        if current is not None:
            raise tag_conflict(name, tag, current, digest)
        try:
            response = self.client.put_image(
                repositoryName=repository,
                imageManifest=manifest.data.decode(),
                imageManifestMediaType=manifest.media_type,
                imageTag=tag,
                **self._ids(),
            )
        except self._errors() as exc:
            # Someone tagged it between our check and our put: done when it is the same image.
            if ecr_code(exc) in ("ImageAlreadyExistsException", "ImageTagAlreadyExistsException"):
                now = self.describe(repository, tag)
                if now == digest:
                    return False
                raise tag_conflict(name, tag, now, digest) from None
            raise ecr_error(exc, f"put {repository}:{tag}") from None
        stored = str(response["image"]["imageId"]["imageDigest"])
        if stored != digest:
            raise RegistryError(f"ECR stored {repository}:{tag} as {stored}, expected {digest}")
        return True

    def credentials(self, redactor: Redactor | None) -> tuple[str, str]:
        """``AWS`` and the token for basic auth on the registry API (valid 12 hours, never printed)."""
        try:
            response = self.client.get_authorization_token()
        except self._errors() as exc:
            raise ecr_error(exc, "get authorization token") from None
        encoded = str(response["authorizationData"][0]["authorizationToken"])
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        if redactor is not None:
            redactor.add(encoded)
            redactor.add(password)
        return user, password


def tag_mutability(client: Any, repository: str, registry_id: str | None = None) -> TagMutability:
    """``repository``'s tag mutability through an ECR client (``DescribeRepositories``)."""
    return Ecr(client, registry_id).mutability(repository)


def ecr_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def ecr_error(exc: BaseException, what: str) -> RegistryError:
    code = ecr_code(exc) or type(exc).__name__
    hint = None
    if code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
        hint = (
            "check the environment's AWS role: it needs ecr:BatchGetImage, ecr:PutImage, ecr:DescribeImages, "
            "ecr:DescribeRepositories"
        )
    elif code == "RepositoryNotFoundException":
        hint = "create the repository (deployctl apply shared), or fix [tool.deployctl.apps.*.image]"
    return RegistryError(f"ECR {what}: {code}: {exc}", hint)
