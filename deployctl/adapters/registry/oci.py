"""The OCI distribution API on one registry host: manifests, tags, referrers and blobs (HTTP: ``oci_http``)."""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from deployctl.adapters.registry.errors import RegistryError, TagInvalidError, TransientError, tag_conflict
from deployctl.adapters.registry.manifest import ACCEPT, OCI_INDEX, Descriptor, ManifestBytes, descriptor, media_type_of

if TYPE_CHECKING:
    import urllib3

from deployctl.adapters.registry.oci_http import OciHttp

log = logging.getLogger(__name__)

CHUNK = 1024 * 1024
NEXT_LINK = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')


@dataclass
class OciRegistry(OciHttp):
    """One registry host spoken to through the OCI distribution API."""

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
