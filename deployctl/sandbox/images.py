"""Synthetic OCI images pushed through the OCI distribution API (no docker, no network beyond the lab).

The lab tests, the demo and the promotion tests use these to put real manifests (and, optionally,
a multi-platform index with a BuildKit-style attestation manifest) into a lab registry::

    image = push_image("127.0.0.1:5000", "api", "latest", layer_size=4096, multi_platform=True)
    image.digest   # sha256 of the exact manifest/index bytes the registry stored

Manifests are built once as bytes and always handled as bytes: the digest is the sha256 of the
bytes, so they are never re-serialized.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deployctl.adapters.registry.manifest import (
    IN_TOTO,
    OCI_CONFIG,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_LAYER,
    OCI_MANIFEST,
    ManifestBytes,
    digest_of,
)

__all__ = [
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Blob",
    "SyntheticImage",
    "build_attestation",
    "build_index",
    "build_manifest",
    "build_referrer",
    "digest_of",
]

COSIGN_SIGNATURE = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
EMPTY_CONFIG = b"{}"

DEFAULT_PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))


@dataclass(frozen=True)
class Blob:
    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": len(self.data), **extra}


@dataclass(frozen=True)
class SyntheticImage:
    """An image to push: its manifest (or index) as exact bytes, plus the blobs and child images it references."""

    manifest: ManifestBytes
    blobs: tuple[Blob, ...] = ()
    children: tuple[SyntheticImage, ...] = ()  # for an index: the manifests it lists

    @property
    def data(self) -> bytes:
        return self.manifest.data

    @property
    def media_type(self) -> str:
        return self.manifest.media_type

    @property
    def digest(self) -> str:
        return self.manifest.digest


def _image(
    doc: Mapping[str, Any], blobs: Sequence[Blob] = (), children: Sequence[SyntheticImage] = ()
) -> SyntheticImage:
    media_type = str(doc["mediaType"])
    return SyntheticImage(ManifestBytes(json.dumps(doc, indent=2).encode(), media_type), tuple(blobs), tuple(children))


def build_manifest(
    *,
    layer_size: int = 1024,
    layers: int = 1,
    platform: tuple[str, str] = ("linux", "amd64"),
    seed: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> SyntheticImage:
    """An OCI image manifest with ``layers`` random layers of ``layer_size`` bytes each."""
    rng = random.Random(seed)  # noqa: S311 - test data, not cryptography
    layer_blobs = [Blob(OCI_LAYER, rng.randbytes(layer_size)) for _ in range(layers)]
    config = {
        "architecture": platform[1],
        "os": platform[0],
        "config": {"Labels": dict(labels or {})},
        "rootfs": {"type": "layers", "diff_ids": [b.digest for b in layer_blobs]},
        "history": [{"created_by": "deployctl lab synthetic layer"} for _ in layer_blobs],
    }
    config_blob = Blob(OCI_CONFIG, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config_blob.descriptor(),
        "layers": [b.descriptor() for b in layer_blobs],
    }
    return _image(manifest, (config_blob, *layer_blobs))


def build_attestation(subject: SyntheticImage, seed: int | None = None) -> SyntheticImage:
    """A BuildKit-style attestation manifest (in-toto SBOM/provenance layer) for ``subject``."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://slsa.dev/provenance/v0.2",
        "subject": [{"name": "synthetic", "digest": {"sha256": subject.digest.split(":", 1)[1]}}],
        "predicate": {"builder": {"id": "deployctl-lab"}, "seed": seed},
    }
    layer = Blob(IN_TOTO, json.dumps(statement, sort_keys=True).encode())
    config = Blob(
        OCI_CONFIG, b'{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}'
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor(annotations={"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"})],
    }
    return _image(manifest, (config, layer))


def build_index(
    *,
    platforms: Sequence[tuple[str, str]] = DEFAULT_PLATFORMS,
    attestation: bool = True,
    layer_size: int = 1024,
    layers: int = 1,
    seed: int | None = None,
) -> SyntheticImage:
    """An OCI index with one manifest per platform and, optionally, an attestation manifest per image."""
    base = seed if seed is not None else random.randrange(1 << 30)  # noqa: S311
    children: list[SyntheticImage] = []
    entries: list[dict[str, Any]] = []
    for offset, (os_name, arch) in enumerate(platforms):
        child = build_manifest(layer_size=layer_size, layers=layers, platform=(os_name, arch), seed=base + offset)
        children.append(child)
        entries.append(
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": len(child.data),
                "platform": {"architecture": arch, "os": os_name},
            }
        )
        if attestation:
            att = build_attestation(child, seed=base + offset)
            children.append(att)
            entries.append(
                {
                    "mediaType": att.media_type,
                    "digest": att.digest,
                    "size": len(att.data),
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": child.digest,
                    },
                }
            )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return _image(index, (), children)


def build_referrer(
    subject: Mapping[str, Any], *, artifact_type: str = COSIGN_ARTIFACT, payload: bytes | None = None
) -> SyntheticImage:
    """An OCI 1.1 artifact attached to ``subject`` (a descriptor: mediaType, digest, size): by
    default a cosign-style signature (a simple-signing payload layer, an empty config)."""
    if payload is None:
        claim = {"critical": {"image": {"docker-manifest-digest": subject["digest"]}, "type": "cosign signature"}}
        payload = json.dumps(claim, sort_keys=True).encode()
    layer = Blob(COSIGN_SIGNATURE, payload)
    signature = base64.b64encode(digest_of(payload).encode()).decode()  # stands in for a real signature
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": Blob(OCI_EMPTY, EMPTY_CONFIG).descriptor(),
        "layers": [layer.descriptor(annotations={"dev.cosignproject.cosign/signature": signature})],
        "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]},
    }
    return _image(manifest, (Blob(OCI_EMPTY, EMPTY_CONFIG), layer))
