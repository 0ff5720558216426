"""The OCI distribution API: one registry host over HTTP (urllib3, imported on first use), with retries.

Transient failures (5xx, 429, connection resets, timeouts) are retried with exponential backoff, a few
tries and a deadline (``retry``); everything else fails at once with the registry's own words. A registry
that stopped answering gets one try per operation for the rest of the run.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, TypeVar

from deployctl.adapters.registry.errors import RegistryError, TagInvalidError, TransientError, tag_conflict
from deployctl.adapters.registry.manifest import ACCEPT, OCI_INDEX, Descriptor, ManifestBytes, descriptor, media_type_of
from deployctl.adapters.registry.retry import RetryPolicy, seconds, with_retries

if TYPE_CHECKING:
    import urllib3

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
CHUNK = 1024 * 1024
DEFAULT_PARALLEL = 4
NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')

T = TypeVar("T")


def base_url(host: str) -> str:
    """``http`` for a registry on this machine (the sandbox), ``https`` for everything else."""
    bare = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return f"http://{host}" if bare in LOOPBACK_HOSTS else f"https://{host}"


def error_codes(body: bytes) -> list[str]:
    """The ``code`` of each error in an OCI error body (``{"errors": [{"code": ...}]}``); [] otherwise."""
    try:
        errors = json.loads(body).get("errors")
    except (ValueError, AttributeError):
        return []
    return [str(e.get("code")) for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


@dataclass
class OciRegistry:
    """One registry host spoken to through the OCI distribution API."""

    host: str
    username: str | None = None
    password: str | None = None
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    url: str = ""
    _pool: urllib3.PoolManager | None = None
    _silent: bool = False  # it stopped answering earlier in this run: one try per operation from then on

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
        missing_ok: bool = False,
        read_timeout: float | None = None,
    ) -> urllib3.BaseHTTPResponse | None:
        """One request; None on 404 when ``missing_ok``. Transient failures raise ``TransientError``
        (the caller's retry loop decides), a ``TAG_INVALID`` refusal ``TagInvalidError``."""
        import urllib3

        url = self._absolute(path)
        read = read_timeout if read_timeout is not None else self.policy.read_timeout
        try:
            response = self.pool.request(
                method,
                url,
                headers=self._headers(headers),
                body=body,
                preload_content=not stream,
                redirect=method in ("GET", "HEAD"),
                timeout=urllib3.Timeout(connect=self.policy.connect_timeout, read=read),
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            state, detail = self._failure(exc, read)
            raise TransientError(f"{method} {_short(url)}: {detail}", host=self.host, state=state) from None
        status = response.status
        if status in ok:
            return response
        data = b"" if stream else response.data
        text = data[:300].decode(errors="replace").strip()
        response.release_conn()
        if status == 404 and missing_ok:
            return None
        if status in RETRY_STATUSES:
            raise TransientError(f"{method} {_short(url)}: HTTP {status} {text}".strip(), host=self.host)
        if status in (401, 403):
            raise RegistryError(
                f"{method} {_short(url)}: HTTP {status} (not authorized) {text}".strip(),
                "check the registry credentials (for ECR: the environment's role needs ecr:* on the repository)",
            )
        if status == 400 and "TAG_INVALID" in error_codes(data):
            raise TagInvalidError(f"{method} {_short(url)}: HTTP 400 {text}")
        raise RegistryError(f"{method} {_short(url)}: HTTP {status} {text}".strip())

    def _failure(self, exc: BaseException, read_timeout: float) -> tuple[str, str]:
        """(state, detail) of a request that got no HTTP answer: a timeout is a registry not answering,
        anything else (refused, reset, unknown host) one not reachable."""
        import urllib3

        cause = getattr(exc, "reason", None)  # urllib3 wraps the failure of the last try in a MaxRetryError
        exc = cause if isinstance(cause, BaseException) else exc
        if isinstance(exc, urllib3.exceptions.NewConnectionError):  # (a ConnectTimeoutError subclass: first)
            return "not reachable", reason(exc)
        if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
            return "not answering", f"no answer within {seconds(read_timeout)}"
        if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
            return "not answering", f"no connection within {seconds(self.policy.connect_timeout)}"
        return "not reachable", reason(exc)

    def retrying(self, what: str, action: Callable[[], T], *, deadline: bool = True) -> T:
        """``with_retries`` under this registry's policy. A registry that stopped answering (or could not be
        reached) through every try is remembered: later operations of the run get one try, no retries, so a
        follow-up question (did the tag move?) costs at most one timeout, not another full round."""
        if self._silent:
            what += " (one try: the registry stopped answering earlier in this run)"
        policy = replace(self.policy, attempts=1) if self._silent else self.policy
        try:
            return with_retries(what, policy, action, deadline=deadline)
        except RegistryError as exc:
            if exc.details.get("dependency_state") in ("not answering", "not reachable"):
                self._silent = True
            raise

    def need(self, method: str, path: str, **kwargs: Any) -> urllib3.BaseHTTPResponse:
        """``request`` for a response that must be there (a 404 is an error)."""
        response = self.request(method, path, **kwargs)
        if response is None:  # pragma: no cover - missing_ok=False never returns None
            raise RegistryError(f"{method} {path}: not found")
        return response

    # ---- manifests and tags ----------------------------------------------------------------

    def resolve(self, repository: str, reference: str) -> str | None:
        """The digest a tag (or digest) names, or None when the repository has no such manifest."""

        def attempt() -> tuple[bool, str | None]:
            path = f"/v2/{repository}/manifests/{reference}"
            response = self.request("HEAD", path, headers={"Accept": ACCEPT}, missing_ok=True)
            if response is None:
                return False, None
            digest = response.headers.get("Docker-Content-Digest")
            return True, str(digest) if digest else None

        found, digest = self.retrying(f"resolve {repository}:{reference}", attempt)
        if found and digest is None:  # a registry that does not send the header: hash what it serves
            manifest = self.get_manifest(repository, reference)
            return manifest.digest if manifest is not None else None
        return digest

    def get_manifest(self, repository: str, reference: str) -> ManifestBytes | None:
        def attempt() -> ManifestBytes | None:
            path = f"/v2/{repository}/manifests/{reference}"
            response = self.request("GET", path, headers={"Accept": ACCEPT}, missing_ok=True)
            if response is None:
                return None
            return ManifestBytes(response.data, media_type_of(response.data, response.headers.get("Content-Type")))

        manifest = self.retrying(f"get manifest {repository}@{reference}", attempt)
        if manifest is not None and reference.startswith("sha256:") and manifest.digest != reference:
            raise RegistryError(f"registry {self.host} served manifest {manifest.digest} for {reference}")
        return manifest

    def put_manifest(self, repository: str, reference: str, manifest: ManifestBytes) -> str:
        """PUT the exact bytes; returns the digest the registry reports (checked against the bytes).

        By digest this is always safe; under a tag use ``put_tag``, which checks the tag first."""

        def attempt() -> str:
            response = self.need(
                "PUT",
                f"/v2/{repository}/manifests/{reference}",
                headers={"Content-Type": manifest.media_type},
                body=manifest.data,
                ok=(200, 201, 202),
            )
            return str(response.headers.get("Docker-Content-Digest") or manifest.digest)

        digest = self.retrying(f"put manifest {repository}:{reference}", attempt)
        if digest != manifest.digest:
            raise RegistryError(
                f"registry {self.host} stored {repository}:{reference} as {digest}, expected {manifest.digest}"
            )
        return digest

    def put_tag(self, repository: str, tag: str, manifest: ManifestBytes) -> bool:
        """Make ``tag`` name ``manifest``: True when PUT, False when it already did (nothing sent).

        A tag at another digest is refused (``PolicyError``), and so is a ``TAG_INVALID`` answer
        (someone pushed the tag between our check and our PUT; ECR refuses even identical bytes)."""
        name = f"{self.host}/{repository}"
        current = self.resolve(repository, tag)
        if current == manifest.digest:
            return False
        if current is not None:
            raise tag_conflict(name, tag, current, manifest.digest)
        try:
            self.put_manifest(repository, tag, manifest)
        except TagInvalidError:
            now = self.resolve(repository, tag)
            if now == manifest.digest:
                return False
            raise tag_conflict(name, tag, now, manifest.digest) from None
        return True

    def _page(
        self, what: str, path: str, headers: Mapping[str, str], ok: Iterable[int]
    ) -> urllib3.BaseHTTPResponse | None:
        return self.retrying(what, lambda: self.request("GET", path, headers=headers, ok=ok, missing_ok=True))

    def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository`` (following ``Link`` pages); [] when it does not exist."""
        tags: list[str] = []
        path: str | None = f"/v2/{repository}/tags/list"
        while path is not None:
            response = self._page(f"list tags of {repository}", path, {}, (200,))
            if response is None:
                return tags
            tags.extend(str(t) for t in (json.loads(response.data).get("tags") or ()))
            path = _next_page(response.headers.get("Link"))
        return tags

    def referrers(self, repository: str, digest: str) -> list[Descriptor] | None:
        """What refers to ``digest`` through the OCI 1.1 referrers API; None when the registry does not
        serve the API (it answers 404/405/400, or something other than an image index)."""
        found: list[Descriptor] = []
        path: str | None = f"/v2/{repository}/referrers/{digest}"
        first = True
        while path is not None:
            response = self._page(f"referrers of {digest[:19]}", path, {"Accept": OCI_INDEX}, (200, 400, 405))
            content_type = (response.headers.get("Content-Type") or "").split(";")[0].strip() if response else ""
            if response is None or response.status != 200 or content_type != OCI_INDEX:
                if first:
                    return None
                raise RegistryError(f"registry {self.host} stopped serving the referrers of {digest} mid-list")
            found.extend(descriptor(m) for m in (json.loads(response.data).get("manifests") or ()))
            path, first = _next_page(response.headers.get("Link")), False
        return found

    # ---- blobs ----------------------------------------------------------------------------

    def blob_exists(self, repository: str, digest: str) -> bool:
        def attempt() -> bool:
            return self.request("HEAD", f"/v2/{repository}/blobs/{digest}", missing_ok=True) is not None

        return self.retrying(f"check blob {digest[:19]}", attempt)

    def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Cross-repository mount on this host; False when the registry declined (then upload)."""

        def attempt() -> bool:
            query = urllib.parse.urlencode({"mount": digest, "from": from_repository})
            response = self.need("POST", f"/v2/{repository}/blobs/uploads/?{query}", ok=(201, 202))
            if response.status == 202:  # declined: cancel the upload session it opened
                location = response.headers.get("Location")
                if location:
                    try:
                        self.request("DELETE", location, ok=(200, 204, 404))
                    except (RegistryError, TransientError):
                        log.debug("could not cancel upload session %s", location)
                return False
            return True

        return self.retrying(f"mount blob {digest[:19]}", attempt)

    def open_blob(self, repository: str, digest: str) -> urllib3.BaseHTTPResponse:
        return self.need("GET", f"/v2/{repository}/blobs/{digest}", stream=True)

    def upload_blob(
        self, repository: str, digest: str, size: int, source: Any, *, verify: Callable[[], None] | None = None
    ) -> None:
        """POST a session, PATCH the stream in one request (Content-Length known), ``verify`` what was
        streamed (it raises to abandon the upload uncommitted), then PUT ?digest=."""
        start = self.need("POST", f"/v2/{repository}/blobs/uploads/", ok=(202,))
        location = _required(start.headers.get("Location"), "upload location")
        patched = self.need(
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
        if verify is not None:
            verify()
        location = patched.headers.get("Location") or location
        separator = "&" if "?" in location else "?"
        self.need(
            "PUT",
            f"{location}{separator}{urllib.parse.urlencode({'digest': digest})}",
            headers={"Content-Length": "0"},
            ok=(201,),
            read_timeout=self.policy.commit_timeout,
        )


def _next_page(link: str | None) -> str | None:
    match = NEXT_LINK.search(link or "")
    return match[1] if match else None


def _required(value: str | None, what: str) -> str:
    if not value:
        raise TransientError(f"registry response without {what}")
    return value


def _short(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.netloc}{parts.path}"


def reason(exc: BaseException) -> str:
    cause = getattr(exc, "reason", None)
    return f"{type(cause or exc).__name__}: {cause or exc}"
