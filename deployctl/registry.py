"""Container registries: the ECR API (boto3) and the OCI distribution API.

Promotion moves an image by digest, never by re-serializing it: the digest is the
sha256 of the manifest BYTES, so manifests travel as opaque bytes everywhere in
this module (``json`` only reads them to find children and blobs).

- Same ECR repository: ``BatchGetImage`` then ``PutImage`` with the exact manifest
  string and its media type (metadata only, no blob moves).
- Same OCI repository: GET the manifest by digest, PUT the same bytes under the tag.
- Anything else: copy what the target lacks (HEAD first, cross-repo mount on the
  same host, streamed blobs with bounded parallelism), every child manifest of an
  index by digest, and the tagged manifest last, so a failure never moves the tag.

HTTP goes through urllib3 (already a dependency of botocore). Transient failures
(5xx, 429, connection resets, timeouts) are retried with exponential backoff and
a bounded number of attempts.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from deployctl.errors import OperationError, PolicyError
from deployctl.model import ImageRef

if TYPE_CHECKING:
    import urllib3

    from deployctl.config import Environment
    from deployctl.redact import Redactor

log = logging.getLogger(__name__)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+schema2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
# Layers that live elsewhere (Windows base layers): never copied between registries.
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)

ECR_HOST_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 1024 * 1024
DEFAULT_PARALLEL = 4

T = TypeVar("T")


class RegistryError(OperationError):
    """A registry request failed (after retries, when the failure was transient)."""


class TransientError(Exception):
    """A failure worth retrying: 5xx/429, connection reset, timeout."""


# --------------------------------------------------------------------------------------------
# Pure helpers: digests, media types, manifest contents
# --------------------------------------------------------------------------------------------


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_ecr_host(host: str) -> bool:
    return ECR_HOST_RE.match(host) is not None


def ecr_account(host: str) -> str | None:
    match = ECR_HOST_RE.match(host)
    return match["account"] if match else None


def base_url(host: str) -> str:
    """``http`` for a registry on this machine (the sandbox), ``https`` for everything else."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return f"http://{host}" if bare in LOOPBACK_HOSTS else f"https://{host}"


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()

    @property
    def foreign(self) -> bool:
        return self.media_type in FOREIGN_LAYER_TYPES or bool(self.urls)


@dataclass(frozen=True)
class Manifest:
    """A manifest as the registry stores it: exact bytes plus the media type they were served with."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    def _doc(self) -> dict[str, Any]:
        doc = json.loads(self.data)
        if not isinstance(doc, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return doc

    def children(self) -> list[Descriptor]:
        """The manifests an index lists (platform images, attestations), in order."""
        if not self.is_index:
            return []
        return [_descriptor(m) for m in self._doc().get("manifests", ())]

    def blobs(self) -> list[Descriptor]:
        """The config and layers of an image manifest (empty for an index)."""
        if self.is_index:
            return []
        doc = self._doc()
        found = [_descriptor(doc["config"])] if "config" in doc else []
        found.extend(_descriptor(layer) for layer in doc.get("layers", ()))
        return found


def _descriptor(raw: Mapping[str, Any]) -> Descriptor:
    return Descriptor(
        media_type=str(raw.get("mediaType", "")),
        digest=str(raw["digest"]),
        size=int(raw.get("size", -1)),
        urls=tuple(raw.get("urls", ())),
    )


def media_type_of(data: bytes, content_type: str | None) -> str:
    """The manifest's media type: the server's Content-Type when it is one, else the ``mediaType`` field."""
    if content_type:
        ctype = content_type.split(";", 1)[0].strip()
        if ctype in MANIFEST_TYPES:
            return ctype
    try:
        declared = json.loads(data).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    if isinstance(declared, str) and declared in MANIFEST_TYPES:
        return declared
    # An OCI manifest may omit mediaType; an index is recognisable by its "manifests" list.
    try:
        return OCI_INDEX if "manifests" in json.loads(data) else OCI_MANIFEST
    except ValueError:
        raise RegistryError(f"unsupported manifest (Content-Type {content_type!r}, not JSON)") from None


# --------------------------------------------------------------------------------------------
# Retries
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 8.0
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.base_delay * (2 ** (attempt - 1))))


def with_retries(what: str, policy: RetryPolicy, action: Callable[[], T]) -> T:
    """Run ``action``; retry it on ``TransientError`` with exponential backoff, at most ``policy.attempts`` times."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return action()
        except TransientError as exc:
            if attempt == policy.attempts:
                raise RegistryError(f"{what} failed after {attempt} attempts: {exc}") from None
            wait = policy.delay(attempt)
            log.info("%s: %s; retrying in %.1fs (attempt %d of %d)", what, exc, wait, attempt + 1, policy.attempts)
            time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


# --------------------------------------------------------------------------------------------
# OCI distribution API
# --------------------------------------------------------------------------------------------


class _HashingReader:
    """A file-like view of a streamed response that hashes and counts what passes through."""

    def __init__(self, source: Any, on_bytes: Callable[[int], None] | None = None) -> None:
        self._source = source
        self._hash = hashlib.sha256()
        self.count = 0
        self._on_bytes = on_bytes

    def read(self, size: int = CHUNK) -> bytes:
        chunk: bytes = self._source.read(min(size if size and size > 0 else CHUNK, CHUNK))
        self._hash.update(chunk)
        self.count += len(chunk)
        if self._on_bytes is not None:
            self._on_bytes(len(chunk))
        return chunk

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


@dataclass
class OciRegistry:
    """One registry host spoken to through the OCI distribution API."""

    host: str
    username: str | None = None
    password: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    url: str = ""
    _pool: urllib3.PoolManager | None = None

    def __post_init__(self) -> None:
        if not self.url:
            self.url = base_url(self.host)

    @property
    def pool(self) -> urllib3.PoolManager:
        if self._pool is None:
            import urllib3

            self._pool = urllib3.PoolManager(
                maxsize=DEFAULT_PARALLEL * 2,
                timeout=urllib3.Timeout(connect=self.policy.connect_timeout, read=self.policy.read_timeout),
                # Retries are ours (with_retries); urllib3 only follows redirects (ECR sends blob GETs to S3).
                retries=urllib3.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=5),
            )
        return self._pool

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"User-Agent": "deployctl"}
        if self.username is not None and self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        headers.update(extra or {})
        return headers

    def _absolute(self, path_or_url: str) -> str:
        return path_or_url if "://" in path_or_url else self.url + path_or_url

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
    ) -> urllib3.BaseHTTPResponse:
        """One request that must succeed; transient failures raise ``TransientError``."""
        response = self.request_optional(
            method, path, headers=headers, body=body, stream=stream, ok=ok, missing_ok=False
        )
        if response is None:  # pragma: no cover - missing_ok=False never returns None
            raise RegistryError(f"{method} {path}: not found")
        return response

    def request_optional(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        stream: bool = False,
        ok: Iterable[int] = (200,),
        missing_ok: bool = True,
    ) -> urllib3.BaseHTTPResponse | None:
        """One request; None on 404 when ``missing_ok``; transient failures raise ``TransientError``
        (the caller's retry loop decides)."""
        import urllib3

        url = self._absolute(path)
        try:
            response = self.pool.request(
                method,
                url,
                headers=self._headers(headers),
                body=body,
                preload_content=not stream,
                redirect=method in ("GET", "HEAD"),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise TransientError(f"{method} {_short(url)}: {_reason(exc)}") from None
        status = response.status
        if status in ok:
            return response
        text = "" if stream else response.data[:300].decode(errors="replace").strip()
        response.release_conn()
        if status == 404 and missing_ok:
            return None
        if status in RETRY_STATUSES:
            raise TransientError(f"{method} {_short(url)}: HTTP {status} {text}".strip())
        if status in (401, 403):
            raise RegistryError(
                f"{method} {_short(url)}: HTTP {status} (not authorized) {text}".strip(),
                "check the registry credentials (for ECR: the environment's role needs ecr:* on the repository)",
            )
        raise RegistryError(f"{method} {_short(url)}: HTTP {status} {text}".strip())

    # ---- manifests ------------------------------------------------------------------------

    def resolve(self, repository: str, reference: str) -> str | None:
        """The digest a tag (or digest) names, or None when the repository has no such manifest."""

        def attempt() -> str | None:
            response = self.request_optional(
                "HEAD",
                f"/v2/{repository}/manifests/{reference}",
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
            )
            if response is None:
                return None
            digest = response.headers.get("Docker-Content-Digest")
            return str(digest) if digest else None

        digest = with_retries(f"resolve {repository}:{reference}", self.policy, attempt)
        if digest is None and reference.startswith("sha256:"):
            return None
        if digest is None:
            manifest = self.get_manifest(repository, reference)
            return manifest.digest if manifest is not None else None
        return digest

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        def attempt() -> Manifest | None:
            response = self.request_optional(
                "GET",
                f"/v2/{repository}/manifests/{reference}",
                headers={"Accept": ", ".join(MANIFEST_TYPES)},
            )
            if response is None:
                return None
            return Manifest(response.data, media_type_of(response.data, response.headers.get("Content-Type")))

        manifest = with_retries(f"get manifest {repository}@{reference}", self.policy, attempt)
        if manifest is not None and reference.startswith("sha256:") and manifest.digest != reference:
            raise RegistryError(f"registry {self.host} served manifest {manifest.digest} for {reference}")
        return manifest

    def put_manifest(self, repository: str, reference: str, manifest: Manifest) -> str:
        """PUT the exact bytes; returns the digest the registry reports (checked against the bytes)."""

        def attempt() -> str:
            response = self.request(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                headers={"Content-Type": manifest.media_type},
                body=manifest.data,
                ok=(200, 201, 202),
            )
            return str(response.headers.get("Docker-Content-Digest") or manifest.digest)

        digest = with_retries(f"put manifest {repository}:{reference}", self.policy, attempt)
        if digest != manifest.digest:
            raise RegistryError(
                f"registry {self.host} stored {repository}:{reference} as {digest}, expected {manifest.digest}"
            )
        return digest

    # ---- blobs ----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        def attempt() -> bool:
            return self.request_optional("HEAD", f"/v2/{repository}/blobs/{digest}") is not None

        return with_retries(f"check blob {digest[:19]}", self.policy, attempt)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount on this host; False when the registry declined (then upload)."""

        def attempt() -> bool:
            query = urllib.parse.urlencode({"mount": digest, "from": from_repository})
            response = self.request("POST", f"/v2/{repository}/blobs/uploads/?{query}", ok=(201, 202))
            if response.status == 202:  # declined: cancel the upload session it opened
                location = response.headers.get("Location")
                if location:
                    try:
                        self.request("DELETE", location, ok=(200, 204, 404))
                    except (RegistryError, TransientError):
                        log.debug("could not cancel upload session %s", location)
                return False
            return True

        return with_retries(f"mount blob {digest[:19]}", self.policy, attempt)

    def open_blob(self, repository: str, digest: str) -> urllib3.BaseHTTPResponse:
        return self.request("GET", f"/v2/{repository}/blobs/{digest}", stream=True)

    def upload_blob(self, repository: str, digest: str, size: int, source: Any) -> None:
        """POST a session, PATCH the stream in one request (Content-Length known), PUT ?digest=."""
        start = self.request("POST", f"/v2/{repository}/blobs/uploads/", ok=(202,))
        location = _required(start.headers.get("Location"), "upload location")
        patched = self.request(
            "PATCH",
            location,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(size),
                "Content-Range": f"0-{max(size - 1, 0)}",
            },
            body=source,
            ok=(202,),
        )
        location = patched.headers.get("Location") or location
        separator = "&" if "?" in location else "?"
        self.request(
            "PUT",
            f"{location}{separator}{urllib.parse.urlencode({'digest': digest})}",
            headers={"Content-Length": "0"},
            ok=(201,),
        )


def _required(value: str | None, what: str) -> str:
    if not value:
        raise TransientError(f"registry response without {what}")
    return value


def _short(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return f"{type(reason or exc).__name__}: {reason or exc}"


# --------------------------------------------------------------------------------------------
# ECR API
# --------------------------------------------------------------------------------------------


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
            if _ecr_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return None
            raise _ecr_error(exc, f"describe {repository}:{tag}") from None
        details = response.get("imageDetails", ())
        return str(details[0]["imageDigest"]) if details else None

    def get(self, repository: str, *, digest: str | None = None, tag: str | None = None) -> tuple[Manifest, str]:
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
            raise _ecr_error(exc, f"get {repository}@{digest or tag}") from None
        images = response.get("images", ())
        if not images:
            failure = (response.get("failures") or [{}])[0]
            raise RegistryError(
                f"ECR has no image {repository}@{digest or tag}: {failure.get('failureReason', 'not found')}"
            )
        image = images[0]
        text: str = image["imageManifest"]
        media_type = image.get("imageManifestMediaType") or media_type_of(text.encode(), None)
        return Manifest(text.encode(), media_type), str(image["imageId"]["imageDigest"])

    def put(self, repository: str, tag: str, manifest: Manifest, digest: str) -> str:
        """Tag ``digest`` as ``tag`` with the exact manifest bytes; returns the digest ECR reports."""
        try:
            response = self.client.put_image(
                repositoryName=repository,
                imageManifest=manifest.data.decode(),
                imageManifestMediaType=manifest.media_type,
                imageTag=tag,
                **self._ids(),
            )
        except self._errors() as exc:
            code = _ecr_code(exc)
            if code == "ImageAlreadyExistsException":
                # Success only when the tag really names the same image.
                current = self.describe(repository, tag)
                if current == digest:
                    return digest
                raise PolicyError(
                    f"{repository}:{tag} already exists at {current}, not {digest}",
                    "release tags are immutable: cut a new release tag instead",
                ) from None
            if code == "ImageTagAlreadyExistsException":
                current = self.describe(repository, tag)
                raise PolicyError(
                    f"{repository}:{tag} already points at {current or 'another image'} in an immutable "
                    f"repository; refusing to promote {digest} under the same tag",
                    "release tags are immutable: cut a new release tag instead",
                ) from None
            raise _ecr_error(exc, f"put {repository}:{tag}") from None
        return str(response["image"]["imageId"]["imageDigest"])

    def credentials(self, redactor: Redactor | None) -> tuple[str, str]:
        """``AWS`` and the token for basic auth on the registry API (valid 12 hours, never printed)."""
        try:
            response = self.client.get_authorization_token()
        except self._errors() as exc:
            raise _ecr_error(exc, "get authorization token") from None
        encoded = str(response["authorizationData"][0]["authorizationToken"])
        user, _, password = base64.b64decode(encoded).decode().partition(":")
        if redactor is not None:
            redactor.add(encoded)
            redactor.add(password)
        return user, password


def _ecr_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _ecr_error(exc: BaseException, what: str) -> RegistryError:
    code = _ecr_code(exc) or type(exc).__name__
    hint = None
    if code in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
        hint = "check the environment's AWS role: it needs ecr:BatchGetImage, ecr:PutImage, ecr:DescribeImages"
    elif code == "RepositoryNotFoundException":
        hint = "create the repository (deployctl apply shared), or fix [tool.deployctl.apps.*.image]"
    return RegistryError(f"ECR {what}: {code}: {exc}", hint)


# --------------------------------------------------------------------------------------------
# Endpoints: what promote talks to
# --------------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    """A repository in a registry and the means to reach it (ECR API and/or OCI API)."""

    host: str
    repository: str
    ecr: Ecr | None = None
    oci: OciRegistry | None = None
    _oci_factory: Callable[[], OciRegistry] | None = None

    @property
    def name(self) -> str:
        return f"{self.host}/{self.repository}"

    def registry_api(self) -> OciRegistry:
        if self.oci is None:
            if self._oci_factory is None:
                raise RegistryError(f"no registry API access configured for {self.host}")
            self.oci = self._oci_factory()
        return self.oci

    def resolve(self, tag: str) -> str | None:
        if self.ecr is not None:
            return self.ecr.describe(self.repository, tag)
        return self.registry_api().resolve(self.repository, tag)


def endpoint(
    env: Environment,
    image: ImageRef,
    *,
    redactor: Redactor | None = None,
    policy: RetryPolicy | None = None,
    ecr_client: Any | None = None,
) -> Endpoint:
    """The endpoint for ``image`` as seen from ``env`` (its AWS credentials for ECR hosts)."""
    policy = policy or RetryPolicy()
    if not is_ecr_host(image.registry):
        return Endpoint(image.registry, image.repository, oci=OciRegistry(image.registry, policy=policy))
    if ecr_client is None:
        from deployctl.aws import client

        ecr_client = client(env, "ecr")
    ecr = Ecr(ecr_client, ecr_account(image.registry))

    def oci() -> OciRegistry:
        user, password = ecr.credentials(redactor)
        return OciRegistry(image.registry, username=user, password=password, policy=policy)

    return Endpoint(image.registry, image.repository, ecr=ecr, _oci_factory=oci)


def resolve(env: Environment, image: ImageRef, *, redactor: Redactor | None = None) -> str | None:
    """The digest ``image.tag`` names in its registry, or None when there is no such tag."""
    if image.tag is None:
        raise ValueError("resolve needs an image tag")
    return endpoint(env, image, redactor=redactor).resolve(image.tag)


# --------------------------------------------------------------------------------------------
# Promotion transfer: retag or copy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransferReport:
    mode: str  # ecr-retag | oci-retag | copy | noop
    digest: str
    target: str
    manifests_put: int = 0
    blobs_present: int = 0
    blobs_mounted: int = 0
    blobs_copied: int = 0
    bytes_copied: int = 0
    seconds: float = 0.0

    def data(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "digest": self.digest,
            "target": self.target,
            "manifests_put": self.manifests_put,
            "blobs_present": self.blobs_present,
            "blobs_mounted": self.blobs_mounted,
            "blobs_copied": self.blobs_copied,
            "bytes_copied": self.bytes_copied,
            "seconds": round(self.seconds, 3),
        }


def transfer_mode(source: Endpoint, target: Endpoint) -> str:
    """How ``source`` reaches ``target``: metadata only when it is the same repository."""
    if source.host == target.host and source.repository == target.repository:
        return "ecr-retag" if source.ecr is not None else "oci-retag"
    return "copy"


def promote_image(
    source: Endpoint,
    target: Endpoint,
    digest: str,
    tag: str,
    *,
    parallel: int = DEFAULT_PARALLEL,
    progress: Callable[[str], None] | None = None,
) -> TransferReport:
    """Make ``target:tag`` name exactly ``digest`` from ``source``; the tag moves last, or not at all.

    An existing ``tag`` at another digest is refused (release tags are immutable).
    """
    started = time.monotonic()
    current = target.resolve(tag)
    if current == digest:
        return TransferReport("noop", digest, f"{target.name}:{tag}", seconds=time.monotonic() - started)
    if current is not None:
        raise PolicyError(
            f"{target.name}:{tag} already points at {current}, not {digest} (release tags are immutable)",
            "cut a new release tag instead",
        )
    mode = transfer_mode(source, target)
    try:
        if mode == "ecr-retag" and source.ecr is not None:
            manifest, ecr_digest = source.ecr.get(source.repository, digest=digest)
            put = source.ecr.put(target.repository, tag, manifest, ecr_digest)
            _check_digest(put, ecr_digest, target, tag)
            report = TransferReport(mode, put, f"{target.name}:{tag}", manifests_put=1)
        elif mode == "oci-retag":
            registry = source.registry_api()
            manifest = _need_manifest(registry, source, digest)
            put = registry.put_manifest(target.repository, tag, manifest)
            _check_digest(put, digest, target, tag)
            report = TransferReport(mode, put, f"{target.name}:{tag}", manifests_put=1)
        else:
            report = _copy(source, target, digest, tag, parallel=parallel, progress=progress)
    except RegistryError as exc:
        raise RegistryError(
            f"{exc.message}\nthe target tag {target.name}:{tag} was {_tag_state(target, tag, current)}",
            exc.hint or "the registry may be unavailable: re-run the same promote when it is healthy (it resumes)",
        ) from None
    return replace(report, seconds=time.monotonic() - started)


def _tag_state(target: Endpoint, tag: str, before: str | None) -> str:
    try:
        now = target.resolve(tag)
    except (RegistryError, TransientError):
        return "not verified (the registry did not answer); re-run to check"
    if now == before:
        return "not moved"
    return f"moved to {now}"


def _check_digest(put: str, expected: str, target: Endpoint, tag: str) -> None:
    if put != expected:
        raise RegistryError(f"{target.name}:{tag} was stored as {put}, expected {expected}")


def _need_manifest(registry: OciRegistry, endpoint: Endpoint, digest: str) -> Manifest:
    manifest = registry.get_manifest(endpoint.repository, digest)
    if manifest is None:
        raise RegistryError(f"{endpoint.name}@{digest} does not exist")
    return manifest


def _copy(
    source: Endpoint,
    target: Endpoint,
    digest: str,
    tag: str,
    *,
    parallel: int,
    progress: Callable[[str], None] | None,
) -> TransferReport:
    src = source.registry_api()
    dst = target.registry_api()
    root = _need_manifest(src, source, digest)
    # Children before parents: every manifest an index names must exist before the index.
    ordered: list[Manifest] = []
    _collect(src, source, root, ordered, seen=set())
    blobs: dict[str, Descriptor] = {}
    for manifest in ordered:
        for blob in manifest.blobs():
            if not blob.foreign:
                blobs.setdefault(blob.digest, blob)
    counts = {"present": 0, "mounted": 0, "copied": 0, "bytes": 0}
    lock = threading.Lock()
    same_host = source.host == target.host

    def move(blob: Descriptor) -> None:
        if dst.blob_exists(target.repository, blob.digest):
            outcome = "present"
        elif same_host and dst.mount_blob(target.repository, blob.digest, source.repository):
            outcome = "mounted"
        else:
            copied = with_retries(
                f"copy blob {blob.digest[:19]} ({blob.size} bytes)",
                src.policy,
                lambda: _copy_blob(src, source.repository, dst, target.repository, blob),
            )
            with lock:
                counts["bytes"] += copied
            outcome = "copied"
        with lock:
            counts[outcome] += 1
        if progress is not None:
            progress(f"blob {blob.digest[:19]} {outcome}")

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="blob") as pool:
        # list(): re-raise the first failure here, before any manifest is written
        list(pool.map(move, blobs.values()))
    manifests_put = 0
    for manifest in ordered[:-1]:
        if dst.resolve(target.repository, manifest.digest) is None:
            dst.put_manifest(target.repository, manifest.digest, manifest)
            manifests_put += 1
    put = dst.put_manifest(target.repository, tag, root)
    _check_digest(put, digest, target, tag)
    final = dst.resolve(target.repository, tag)
    _check_digest(final or "nothing", digest, target, tag)
    return TransferReport(
        "copy",
        put,
        f"{target.name}:{tag}",
        manifests_put=manifests_put + 1,
        blobs_present=counts["present"],
        blobs_mounted=counts["mounted"],
        blobs_copied=counts["copied"],
        bytes_copied=counts["bytes"],
    )


def _collect(registry: OciRegistry, source: Endpoint, manifest: Manifest, out: list[Manifest], seen: set[str]) -> None:
    if manifest.digest in seen:
        return
    seen.add(manifest.digest)
    for child in manifest.children():
        _collect(registry, source, _need_manifest(registry, source, child.digest), out, seen)
    out.append(manifest)


def _copy_blob(src: OciRegistry, src_repo: str, dst: OciRegistry, dst_repo: str, blob: Descriptor) -> int:
    """Stream one blob from ``src`` to ``dst`` (memory bounded by the chunk size); returns bytes sent."""
    import urllib3

    response = src.open_blob(src_repo, blob.digest)
    try:
        size = blob.size
        if size < 0:
            size = int(response.headers.get("Content-Length", "-1"))
        if size < 0:
            raise RegistryError(f"blob {blob.digest} has no known size")
        reader = _HashingReader(response)
        try:
            dst.upload_blob(dst_repo, blob.digest, size, reader)
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # a source reset surfaces inside the upload
            raise TransientError(f"streaming {blob.digest[:19]}: {_reason(exc)}") from None
        if reader.count != size:
            raise TransientError(f"blob {blob.digest[:19]}: read {reader.count} of {size} bytes")
        if reader.digest != blob.digest:
            raise RegistryError(f"blob {blob.digest} read from {src.host} hashes to {reader.digest}")
        return reader.count
    finally:
        response.release_conn()
