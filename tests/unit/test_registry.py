"""The registry package's pure parts: media types, manifest contents, retries, and the ECR control flow
(botocore's Stubber: real client, canned responses; digests against a real registry are lab tests)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from deployctl.adapters import registry
from deployctl.core.errors import PolicyError
from deployctl.redact import Redactor

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64
D3 = "sha256:" + "3" * 64

# Deliberately odd formatting: the digest is of these bytes, not of any re-serialization.
IMAGE = (
    b'{"schemaVersion":2,  "mediaType":"application/vnd.oci.image.manifest.v1+json",\n'
    b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"' + D1.encode() + b'","size":7},'
    b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"' + D2.encode() + b'","size":9},'
    b'{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"' + D3.encode() + b'",'
    b'"size":5,"urls":["https://example.invalid/x"]}]}'
)
INDEX = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": registry.OCI_INDEX,
        "manifests": [
            {"mediaType": registry.OCI_MANIFEST, "digest": D1, "size": 1, "platform": {"architecture": "amd64"}},
            {"mediaType": registry.OCI_MANIFEST, "digest": D2, "size": 2, "platform": {"architecture": "arm64"}},
            {
                "mediaType": registry.OCI_MANIFEST,
                "digest": D3,
                "size": 3,
                "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
            },
        ],
    }
).encode()


def test_all_four_manifest_types_are_accepted() -> None:
    assert set(registry.MANIFEST_TYPES) == {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",  # the real Docker type (was misspelt)
    }


@pytest.mark.parametrize(
    ("data", "content_type", "expected"),
    [
        (IMAGE, "application/vnd.oci.image.manifest.v1+json", registry.OCI_MANIFEST),
        (INDEX, "application/json", registry.OCI_INDEX),  # generic type: trust the document
        (INDEX, None, registry.OCI_INDEX),
        (b'{"manifests": []}', None, registry.OCI_INDEX),  # OCI index without mediaType
        (b'{"config": {}}', None, registry.OCI_MANIFEST),
        (b"{}", registry.DOCKER_MANIFEST_LIST + "; charset=utf-8", registry.DOCKER_MANIFEST_LIST),
    ],
)
def test_media_type_of(data: bytes, content_type: str | None, expected: str) -> None:
    assert registry.media_type_of(data, content_type) == expected


def test_manifest_digest_is_of_the_exact_bytes() -> None:
    manifest = registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST)
    reserialized = json.dumps(json.loads(IMAGE)).encode()
    assert manifest.digest == registry.digest_of(IMAGE)
    assert registry.digest_of(reserialized) != manifest.digest


def test_image_blobs_and_foreign_layers() -> None:
    blobs = registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST).blobs()
    assert [(b.digest, b.size, b.foreign) for b in blobs] == [(D1, 7, False), (D2, 9, False), (D3, 5, True)]
    assert registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST).children() == []


def test_index_children_include_the_attestation() -> None:
    index = registry.ManifestBytes(INDEX, registry.OCI_INDEX)
    assert index.is_index
    assert [c.digest for c in index.children()] == [D1, D2, D3]
    assert index.blobs() == []


@pytest.mark.parametrize(
    ("host", "ecr", "url"),
    [
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com", True, "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"),
        ("127.0.0.1:5000", False, "http://127.0.0.1:5000"),
        ("localhost:5000", False, "http://localhost:5000"),
        ("registry.example.com", False, "https://registry.example.com"),
        ("ghcr.io", False, "https://ghcr.io"),
    ],
)
def test_hosts(host: str, ecr: bool, url: str) -> None:
    assert registry.is_ecr_host(host) is ecr
    assert registry.base_url(host) == url


def test_an_ecr_host_with_a_trailing_newline_is_not_an_ecr_host() -> None:
    assert not registry.is_ecr_host("123456789012.dkr.ecr.us-east-1.amazonaws.com\n")


def test_backoff_is_exponential_and_capped() -> None:
    policy = registry.RetryPolicy(base_delay=0.5, max_delay=3)
    assert [policy.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_with_retries_succeeds_after_transient_failures() -> None:
    calls: Iterator[str | Exception] = iter([registry.TransientError("503"), registry.TransientError("reset"), "ok"])

    def action() -> str:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert registry.with_retries("x", registry.RetryPolicy(attempts=3, base_delay=0), action) == "ok"


def test_with_retries_gives_up_with_the_count() -> None:
    def action() -> str:
        raise registry.TransientError("HTTP 503", host="r.example")

    with pytest.raises(
        registry.RegistryError,
        match=r"registry r.example failing: put manifest gave up after 2 attempts in .* \(HTTP 503\)",
    ):
        registry.with_retries("put manifest", registry.RetryPolicy(attempts=2, base_delay=0), action)


# ---- ECR control flow -------------------------------------------------------------------------


@pytest.fixture
def ecr() -> Iterator[tuple[registry.Ecr, Stubber]]:
    client = boto3.client("ecr", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    with Stubber(client) as stubber:
        yield registry.Ecr(client, "123456789012"), stubber
        stubber.assert_no_pending_responses()


def _put_params(tag: str) -> dict[str, Any]:
    return {
        "repositoryName": "api",
        "imageManifest": IMAGE.decode(),
        "imageManifestMediaType": registry.OCI_MANIFEST,
        "imageTag": tag,
        "registryId": "123456789012",
    }


def test_ecr_get_passes_all_media_types_and_keeps_the_string(ecr: tuple[registry.Ecr, Stubber]) -> None:
    client, stub = ecr
    stub.add_response(
        "batch_get_image",
        {
            "images": [
                {
                    "imageId": {"imageDigest": registry.digest_of(IMAGE)},
                    "imageManifest": IMAGE.decode(),
                    "imageManifestMediaType": registry.OCI_MANIFEST,
                }
            ]
        },
        {
            "repositoryName": "api",
            "imageIds": [{"imageDigest": registry.digest_of(IMAGE)}],
            "acceptedMediaTypes": list(registry.MANIFEST_TYPES),
            "registryId": "123456789012",
        },
    )
    manifest, digest = client.get("api", digest=registry.digest_of(IMAGE))
    assert manifest.data == IMAGE
    assert manifest.media_type == registry.OCI_MANIFEST
    assert digest == registry.digest_of(IMAGE)


def test_ecr_put_checks_the_tag_then_sends_the_exact_manifest_and_media_type(
    ecr: tuple[registry.Ecr, Stubber],
) -> None:
    client, stub = ecr
    digest = registry.digest_of(IMAGE)
    stub.add_client_error("describe_images", "ImageNotFoundException", "no such tag")
    stub.add_response("put_image", {"image": {"imageId": {"imageDigest": digest}}}, _put_params("release-1.0.0"))
    assert client.put("api", "release-1.0.0", registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST), digest) is True


def test_ecr_put_of_a_tag_already_at_the_digest_sends_nothing(ecr: tuple[registry.Ecr, Stubber]) -> None:
    client, stub = ecr
    digest = registry.digest_of(IMAGE)
    stub.add_response("describe_images", {"imageDetails": [{"imageDigest": digest}]})
    # No put_image stubbed: a PUT would fail the Stubber.
    assert client.put("api", "release-1.0.0", registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST), digest) is False


def test_ecr_tag_at_another_digest_is_refused_before_any_put(ecr: tuple[registry.Ecr, Stubber]) -> None:
    client, stub = ecr
    stub.add_response("describe_images", {"imageDetails": [{"imageDigest": D1}]})
    with pytest.raises(PolicyError, match=f"already points at {D1}, not {D2}") as caught:
        client.put("api", "release-1.0.0", registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST), D2)
    assert caught.value.exit_code == 4
    assert "immutable" in caught.value.message
    assert "cut a new release tag" in (caught.value.hint or "")


@pytest.mark.parametrize("code", ["ImageAlreadyExistsException", "ImageTagAlreadyExistsException"])
def test_ecr_race_on_put_is_done_at_the_same_digest_and_refused_at_another(
    ecr: tuple[registry.Ecr, Stubber], code: str
) -> None:
    """Someone tags between our check and our put: ECR refuses; what the tag names then decides."""
    client, stub = ecr
    digest = registry.digest_of(IMAGE)
    manifest = registry.ManifestBytes(IMAGE, registry.OCI_MANIFEST)
    for now in (digest, D1):
        stub.add_client_error("describe_images", "ImageNotFoundException", "not yet")
        stub.add_client_error("put_image", code, "exists")
        stub.add_response("describe_images", {"imageDetails": [{"imageDigest": now}]})
    assert client.put("api", "release-1.0.0", manifest, digest) is False
    with pytest.raises(PolicyError, match=f"already points at {D1}, not {digest}"):
        client.put("api", "release-1.0.0", manifest, digest)


@pytest.mark.parametrize(
    ("setting", "exclusions", "latest_moves", "sha_moves"),
    [
        ("MUTABLE", (), True, True),
        ("IMMUTABLE", (), False, False),
        ("IMMUTABLE_WITH_EXCLUSION", ("latest",), True, False),
        ("IMMUTABLE_WITH_EXCLUSION", ("dev-*",), False, False),
        ("MUTABLE_WITH_EXCLUSION", ("release-*",), True, True),
        ("MUTABLE_WITH_EXCLUSION", ("*",), False, False),
        ("SOMETHING_NEW", (), False, False),  # unknown: the strict reading
    ],
)
def test_tag_mutability(setting: str, exclusions: tuple[str, ...], latest_moves: bool, sha_moves: bool) -> None:
    mutability = registry.TagMutability(setting, exclusions)
    assert mutability.allows_moving("latest") is latest_moves
    assert mutability.allows_moving("a" * 40) is sha_moves


def test_tag_mutability_reads_describe_repositories(ecr: tuple[registry.Ecr, Stubber]) -> None:
    client, stub = ecr
    stub.add_response(
        "describe_repositories",
        {"repositories": [{"repositoryName": "api", "imageTagMutability": "IMMUTABLE"}]},
        {"repositoryNames": ["api"], "registryId": "123456789012"},
    )
    assert registry.tag_mutability(client.client, "api", "123456789012") == registry.TagMutability("IMMUTABLE")


def test_ecr_describe_missing_tag_is_none(ecr: tuple[registry.Ecr, Stubber]) -> None:
    client, stub = ecr
    stub.add_client_error("describe_images", "ImageNotFoundException", "no")
    assert client.describe("api", "deadbeef") is None


def test_ecr_token_is_registered_with_the_redactor(ecr: tuple[registry.Ecr, Stubber]) -> None:
    client, stub = ecr
    token = base64.b64encode(b"AWS:s3cr3t-registry-password").decode()
    stub.add_response("get_authorization_token", {"authorizationData": [{"authorizationToken": token}]})
    redactor = Redactor()
    user, password = client.credentials(redactor)
    assert (user, password) == ("AWS", "s3cr3t-registry-password")
    shown = redactor(f"login with {password} / {token}")
    assert password not in shown
    assert token not in shown
