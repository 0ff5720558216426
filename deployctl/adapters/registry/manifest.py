"""Manifests as exact bytes: media types, descriptors, digests (pure: no I/O).

The digest of an image is the sha256 of its manifest BYTES, so a manifest travels as opaque bytes
everywhere; ``json`` only reads them to find children, blobs and the ``subject`` a referrer names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from deployctl.adapters.registry.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST)
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})
ACCEPT = ", ".join(MANIFEST_TYPES)

OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"  # the config of an artifact (OCI 1.1)
IN_TOTO = "application/vnd.in-toto+json"
# Layers that live elsewhere (Windows base layers): never copied between registries.
FOREIGN_LAYER_TYPES = frozenset(
    {
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    }
)
# cosign's tag scheme for what is attached to a digest (signatures, attestations, SBOMs).
REFERRER_TAG_SUFFIXES = (".sig", ".att", ".sbom")


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    @property
    def foreign(self) -> bool:
        return self.media_type in FOREIGN_LAYER_TYPES or bool(self.urls)


def descriptor(raw: Mapping[str, Any]) -> Descriptor:
    return Descriptor(
        media_type=str(raw.get("mediaType", "")),
        digest=str(raw["digest"]),
        size=int(raw.get("size", -1)),
        urls=tuple(raw.get("urls", ())),
        artifact_type=str(raw.get("artifactType", "")),
    )


@dataclass(frozen=True)
class ManifestBytes:
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
        try:
            doc = json.loads(self.data)
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise RegistryError(f"manifest {self.digest} is not a JSON object")
        return doc

    def children(self) -> list[Descriptor]:
        """The manifests an index lists (platform images, attestations), in order."""
        if not self.is_index:
            return []
        return [descriptor(m) for m in self._doc().get("manifests", ())]

    def blobs(self) -> list[Descriptor]:
        """The config and layers of an image manifest (empty for an index)."""
        if self.is_index:
            return []
        doc = self._doc()
        found = [descriptor(doc["config"])] if "config" in doc else []
        found.extend(descriptor(layer) for layer in doc.get("layers", ()))
        return found

    @property
    def subject(self) -> str | None:
        """The digest this manifest refers to (OCI 1.1 ``subject``: a signature, SBOM, attestation)."""
        subject = self._doc().get("subject")
        return str(subject["digest"]) if isinstance(subject, dict) and "digest" in subject else None


def media_type_of(data: bytes, content_type: str | None) -> str:
    """The manifest's media type: the server's Content-Type when it is one, else the ``mediaType`` field."""
    if content_type:
        ctype = content_type.split(";", 1)[0].strip()
        if ctype in MANIFEST_TYPES:
            return ctype
    try:
        doc = json.loads(data)
    except ValueError:
        raise RegistryError(f"unsupported manifest (Content-Type {content_type!r}, not JSON)") from None
    declared = doc.get("mediaType") if isinstance(doc, dict) else None
    if isinstance(declared, str) and declared in MANIFEST_TYPES:
        return declared
    # An OCI manifest may omit mediaType; an index is recognisable by its "manifests" list.
    return OCI_INDEX if isinstance(doc, dict) and "manifests" in doc else OCI_MANIFEST


def referrer_tags(digest: str) -> dict[str, str]:
    """The tag scheme's tags for what is attached to ``digest``: ``sha256-<hex>`` (the OCI 1.1
    fallback index) and cosign's ``sha256-<hex>.sig|.att|.sbom``, each mapped to the digest."""
    algorithm, _, hexdigest = digest.partition(":")
    base = f"{algorithm}-{hexdigest}"
    return {tag: digest for tag in (base, *(base + suffix for suffix in REFERRER_TAG_SUFFIXES))}
