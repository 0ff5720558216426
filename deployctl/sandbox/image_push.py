"""Synthetic images pushed to a lab registry over the OCI distribution API (plain http.client: blobs, manifests,
tags, referrers)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deployctl.adapters.registry.manifest import (
    ACCEPT,
    OCI_INDEX,
    digest_of,
)
from deployctl.sandbox.images import (
    DEFAULT_PLATFORMS,
    Blob,
    SyntheticImage,
    build_index,
    build_manifest,
    build_referrer,
)


class RegistryHTTPError(Exception):
    """An unexpected HTTP status from the registry."""

    def __init__(self, method: str, url: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {url}: HTTP {status}: {body[:300].decode(errors='replace')}")
        self.status = status
        self.body = body


@dataclass(frozen=True)
class PushedImage:
    registry: str
    repository: str
    tag: str | None
    digest: str
    media_type: str
    manifest: bytes
    # platform ("linux/amd64") -> child manifest digest; empty for a single manifest
    platforms: Mapping[str, str] = field(default_factory=dict)
    attestations: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """``registry/repository@digest``: the immutable reference."""
        return f"{self.registry}/{self.repository}@{self.digest}"


def _request(
    method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> tuple[int, dict[str, str], bytes]:
    parts = urllib.parse.urlsplit(url)
    conn_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = conn_class(parts.netloc, timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data
    finally:
        conn.close()


def _base(registry: str) -> str:
    return registry if registry.startswith(("http://", "https://")) else f"http://{registry}"


def blob_exists(registry: str, repository: str, digest: str) -> bool:
    status, _, _ = _request("HEAD", f"{_base(registry)}/v2/{repository}/blobs/{digest}")
    return status == 200


def push_blob(registry: str, repository: str, blob: Blob) -> str:
    """Upload one blob (monolithic: POST an upload session, PUT the bytes); skipped when present."""
    base = _base(registry)
    if blob_exists(registry, repository, blob.digest):
        return blob.digest
    url = f"{base}/v2/{repository}/blobs/uploads/"
    status, headers, body = _request("POST", url, b"", {"Content-Length": "0"})
    if status != 202:
        raise RegistryHTTPError("POST", url, status, body)
    location = urllib.parse.urljoin(base + "/", headers["location"])
    separator = "&" if "?" in location else "?"
    put_url = f"{location}{separator}digest={urllib.parse.quote(blob.digest)}"
    status, _, body = _request(
        "PUT", put_url, blob.data, {"Content-Type": "application/octet-stream", "Content-Length": str(len(blob.data))}
    )
    if status != 201:
        raise RegistryHTTPError("PUT", put_url, status, body)
    return blob.digest


def put_manifest(registry: str, repository: str, reference: str, data: bytes, media_type: str) -> str:
    """PUT manifest bytes under a tag or digest; returns the digest the registry computed."""
    url = f"{_base(registry)}/v2/{repository}/manifests/{reference}"
    status, headers, body = _request("PUT", url, data, {"Content-Type": media_type})
    if status != 201:
        raise RegistryHTTPError("PUT", url, status, body)
    return headers.get("docker-content-digest") or digest_of(data)


def get_manifest(registry: str, repository: str, reference: str) -> tuple[bytes, str, str]:
    """(bytes, media type, digest) of a manifest or index by tag or digest."""
    url = f"{_base(registry)}/v2/{repository}/manifests/{reference}"
    status, headers, body = _request("GET", url, headers={"Accept": ACCEPT})
    if status != 200:
        raise RegistryHTTPError("GET", url, status, body)
    return body, headers.get("content-type", ""), headers.get("docker-content-digest") or digest_of(body)


def list_tags(registry: str, repository: str) -> list[str]:
    url = f"{_base(registry)}/v2/{repository}/tags/list"
    status, _, body = _request("GET", url)
    if status == 404:
        return []
    if status != 200:
        raise RegistryHTTPError("GET", url, status, body)
    return list(json.loads(body).get("tags") or [])


def push_manifest(registry: str, repository: str, manifest: SyntheticImage, tag: str | None = None) -> str:
    """Push a manifest (children and blobs first), by digest, then under ``tag`` if given."""
    for child in manifest.children:
        push_manifest(registry, repository, child)
    for blob in manifest.blobs:
        push_blob(registry, repository, blob)
    digest = put_manifest(registry, repository, manifest.digest, manifest.data, manifest.media_type)
    if tag is not None:
        put_manifest(registry, repository, tag, manifest.data, manifest.media_type)
    return digest


def push_image(
    registry: str,
    repository: str,
    tag: str | None = None,
    *,
    layer_size: int = 1024,
    layers: int = 1,
    multi_platform: bool = False,
    attestation: bool = False,
    platforms: Sequence[tuple[str, str]] = DEFAULT_PLATFORMS,
    seed: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> PushedImage:
    """Build a synthetic image (or a multi-platform index) and push it; returns what was pushed.

    Each image has ``layers`` random layers of ``layer_size`` bytes (the benchmarks push multi-layer
    images of hundreds of MB this way)."""
    if multi_platform:
        manifest = build_index(
            platforms=platforms, attestation=attestation, layer_size=layer_size, layers=layers, seed=seed
        )
    else:
        # The repository is in the config: the same seed pushed to two repositories (two tests of one lab) gives two
        # digests, so a digest one test marks as broken (``Lab.mark_image``) never breaks another test's image.
        own = {"deployctl.lab/repository": repository} if labels is None else labels
        manifest = build_manifest(layer_size=layer_size, layers=layers, seed=seed, labels=own)
    digest = push_manifest(registry, repository, manifest, tag)
    platform_map: dict[str, str] = {}
    attestations: list[str] = []
    if manifest.media_type == OCI_INDEX:
        for entry in json.loads(manifest.data)["manifests"]:
            plat = entry.get("platform", {})
            if entry.get("annotations", {}).get("vnd.docker.reference.type") == "attestation-manifest":
                attestations.append(entry["digest"])
            else:
                platform_map[f"{plat.get('os')}/{plat.get('architecture')}"] = entry["digest"]
    return PushedImage(
        registry=registry,
        repository=repository,
        tag=tag,
        digest=digest,
        media_type=manifest.media_type,
        manifest=manifest.data,
        platforms=platform_map,
        attestations=tuple(attestations),
    )


def push_referrer(
    registry: str, repository: str, image: PushedImage, *, suffix: str | None = ".sig", payload: bytes | None = None
) -> tuple[SyntheticImage, str | None]:
    """Attach a signature-like referrer to ``image``: pushed by digest, and under the tag scheme's
    ``sha256-<hex><suffix>`` unless ``suffix`` is None; returns it and the tag used."""
    subject = {"mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest)}
    referrer = build_referrer(subject, payload=payload)
    tag = None if suffix is None else image.digest.replace(":", "-") + suffix
    push_manifest(registry, repository, referrer, tag)
    return referrer, tag


def retag(registry: str, repository: str, source: str, tag: str) -> str:
    """Point ``tag`` at the manifest ``source`` (tag or digest) refers to, byte for byte."""
    data, media_type, _ = get_manifest(registry, repository, source)
    return put_manifest(registry, repository, tag, data, media_type)
