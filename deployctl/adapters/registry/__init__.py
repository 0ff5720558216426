"""Container registries: the ECR API (boto3) and the OCI distribution API, and promotion between them.

Modules, each by concern (importing this package imports neither boto3 nor urllib3):

- ``manifest``   media types, descriptors, manifests as exact bytes, digests (pure)
- ``oci``        the OCI distribution API client (its HTTP side: ``oci_http``)
- ``retry``      timeouts, tries and a deadline per registry operation, retries said on stderr
- ``ecr``        the ECR API adapter (tags, manifests verbatim, tag mutability, auth tokens)
- ``endpoints``  ``Endpoint`` (a repository and the means to reach it) and the ``endpoint()`` factory
- ``copying``    byte-exact copies of manifests and blobs between repositories
- ``referrers``  signatures, SBOMs and attestations attached to a digest, carried along a copy
- ``transfer``   ``promote_image``: retag or copy, the tag moved last
"""

from __future__ import annotations

from deployctl.adapters.registry.ecr import Ecr, TagMutability, ecr_account, ecr_region, is_ecr_host, tag_mutability
from deployctl.adapters.registry.endpoints import Endpoint, endpoint, resolve
from deployctl.adapters.registry.errors import RegistryError, TagInvalidError, TransientError, tag_conflict
from deployctl.adapters.registry.manifest import (
    ACCEPT,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    INDEX_TYPES,
    MANIFEST_TYPES,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    ManifestBytes,
    digest_of,
    media_type_of,
    referrer_tags,
)
from deployctl.adapters.registry.oci import OciRegistry
from deployctl.adapters.registry.oci_http import base_url
from deployctl.adapters.registry.retry import RetryPolicy, with_retries
from deployctl.adapters.registry.transfer import TransferReport, promote_image, transfer_mode

__all__ = [
    "ACCEPT",
    "DOCKER_MANIFEST",
    "DOCKER_MANIFEST_LIST",
    "INDEX_TYPES",
    "MANIFEST_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "Ecr",
    "Endpoint",
    "ManifestBytes",
    "OciRegistry",
    "RegistryError",
    "RetryPolicy",
    "TagInvalidError",
    "TagMutability",
    "TransferReport",
    "TransientError",
    "base_url",
    "digest_of",
    "ecr_account",
    "ecr_region",
    "endpoint",
    "is_ecr_host",
    "media_type_of",
    "promote_image",
    "referrer_tags",
    "resolve",
    "tag_conflict",
    "tag_mutability",
    "transfer_mode",
    "with_retries",
]
