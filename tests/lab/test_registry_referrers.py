"""Cross-registry promotion carries the image's referrers (signatures, SBOMs, attestations) byte-exact,
against the lab's real registries; a referrer that fails its digest check fails the promotion (exit 1)
with the target release tag not moved.

The lab's CNCF registry does not serve the OCI 1.1 referrers API (checked below), so referrers are
found through the tag scheme (``sha256-<hex>.sig`` and friends), as cosign writes them.
"""

from __future__ import annotations

import http.client

import pytest

from deployctl.adapters import registry as reg
from deployctl.core.errors import ExitCode
from deployctl.sandbox import image_push
from tests.lab.test_registry import Fault, oci, raw_manifest, repo, serve_proxy

pytestmark = pytest.mark.lab


def _blob(host: str, repository: str, digest: str) -> bytes | None:
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request("GET", f"/v2/{repository}/blobs/{digest}")
        response = conn.getresponse()
        data = response.read()
        return data if response.status == 200 else None
    finally:
        conn.close()


def test_the_lab_registry_does_not_serve_the_referrers_api_so_tags_are_read(registry: str) -> None:
    repository = repo()
    pushed = image_push.push_image(registry, repository, "a" * 40, seed=11)
    image_push.push_referrer(registry, repository, pushed, suffix=None)  # by digest only, with a subject
    assert reg.OciRegistry(registry).referrers(repository, pushed.digest) is None


@pytest.mark.parametrize("multi_platform", [False, True], ids=["image", "index"])
def test_a_signed_image_promoted_across_registries_arrives_with_its_referrers_byte_exact(
    registry: str, registry2: str, multi_platform: bool
) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = image_push.push_image(
        registry, src_repo, "b" * 40, multi_platform=multi_platform, attestation=multi_platform, seed=12
    )
    signature, sig_tag = image_push.push_referrer(registry, src_repo, pushed, suffix=".sig")
    sbom, sbom_tag = image_push.push_referrer(registry, src_repo, pushed, suffix=".sbom", payload=b'{"sbom": "spdx"}')
    assert sig_tag == pushed.digest.replace(":", "-") + ".sig"

    report = reg.promote_image(oci(registry, src_repo), oci(registry2, dst_repo), pushed.digest, "release-1.0.0")

    assert report.referrers_api is False
    assert sorted(report.referrers) == sorted([f"{sig_tag}@{signature.digest}", f"{sbom_tag}@{sbom.digest}"])
    assert report.referrers_copied == 2
    assert report.data()["referrers_copied"] == 2
    for referrer, tag in ((signature, sig_tag), (sbom, sbom_tag)):
        assert tag is not None
        data, media_type = raw_manifest(registry2, dst_repo, tag)
        assert data == referrer.data  # the same bytes ...
        assert reg.digest_of(data) == referrer.digest  # ... so the same digest
        assert media_type == reg.OCI_MANIFEST
        assert reg.ManifestBytes(data, media_type).subject == pushed.digest
        for blob in referrer.blobs:
            assert _blob(registry2, dst_repo, blob.digest) == blob.data
    assert raw_manifest(registry2, dst_repo, "release-1.0.0")[0] == pushed.manifest

    # Another release of the same image: the referrers are found and already there.
    again = reg.promote_image(oci(registry, src_repo), oci(registry2, dst_repo), pushed.digest, "release-1.0.1")
    assert (len(again.referrers), again.referrers_copied, again.blobs_copied) == (2, 0, 0)


def test_without_referrers_the_copy_reports_none(registry: str, registry2: str) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = image_push.push_image(registry, src_repo, "c" * 40, seed=13)
    report = reg.promote_image(oci(registry, src_repo), oci(registry2, dst_repo), pushed.digest, "release-1.0.0")
    assert (report.referrers, report.referrers_copied) == ((), 0)
    assert image_push.list_tags(registry2, dst_repo) == ["release-1.0.0"]


def test_a_referrer_failing_its_digest_check_fails_the_promotion_and_the_tag_does_not_move(
    registry: str, registry2: str
) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = image_push.push_image(registry, src_repo, "d" * 40, seed=14)
    signature, sig_tag = image_push.push_referrer(registry, src_repo, pushed, suffix=".sig")
    payload = signature.blobs[-1]  # the signature's payload layer
    with serve_proxy(registry) as source_front:
        # INJECTED: the source serves that one blob with a byte flipped (a real registry never does).
        source_front.faults = [Fault("GET", f"/blobs/{payload.digest}$", "corrupt", times=-1)]
        with pytest.raises(reg.RegistryError) as caught:
            reg.promote_image(
                oci(source_front.host, src_repo), oci(registry2, dst_repo), pushed.digest, "release-1.0.0"
            )
    assert source_front.injected, "the corrupting front was never asked for the blob"
    error = caught.value
    assert error.exit_code == ExitCode.FAILED
    assert f"blob {payload.digest}" in error.message and "hashes to" in error.message
    assert f"{registry2}/{dst_repo}:release-1.0.0 was not moved" in error.message
    tags = image_push.list_tags(registry2, dst_repo)
    assert "release-1.0.0" not in tags and sig_tag not in tags
    assert _blob(registry2, dst_repo, payload.digest) is None  # never committed
