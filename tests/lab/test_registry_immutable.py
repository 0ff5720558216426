"""Tag writes against the sandbox registry's ECR front, which refuses a re-push of an existing tag of
an IMMUTABLE repository (as moto's ECR holds it) with ECR's TAG_INVALID, even for identical bytes.

deployctl checks what a tag names before writing it: "already this digest" is done (no PUT, so the
front never refuses), another digest is refused with exit 4 naming both digests, and a TAG_INVALID
that arrives anyway (someone pushed between our check and our PUT) is the same refusal.
"""

from __future__ import annotations

import boto3
import pytest

from deployctl.adapters import registry as reg
from deployctl.app.build import plan_tags
from deployctl.core.errors import ExitCode, PolicyError
from deployctl.sandbox import image_push, images
from tests.lab.test_registry import Fault, FaultProxy, oci, raw_manifest, repo, serve_proxy

pytestmark = pytest.mark.lab


def _ecr(moto_url: str) -> reg.Ecr:
    client = boto3.client(
        "ecr",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's documented fake credentials
    )
    return reg.Ecr(client)


@pytest.fixture
def immutable(aws_reset: str) -> str:
    """A repository name that moto's ECR holds as IMMUTABLE (so the registry front enforces it)."""
    name = repo()
    _ecr(aws_reset).client.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")
    return name


def test_the_front_refuses_a_re_push_of_identical_bytes(registry: str, immutable: str) -> None:
    """The premise of every test below (if this fails, the front is not in the lab's path)."""
    pushed = image_push.push_image(registry, immutable, "release-1.0.0", seed=21)
    with pytest.raises(image_push.RegistryHTTPError) as caught:
        image_push.put_manifest(registry, immutable, "release-1.0.0", pushed.manifest, pushed.media_type)
    assert caught.value.status == 400 and b"TAG_INVALID" in caught.value.body


def _watch_manifest_puts(front: FaultProxy) -> None:
    """Record every manifest PUT through ``front`` (and forward it unchanged)."""
    front.faults = [Fault("PUT", r"/manifests/", "before", times=-1, action=lambda: None)]


def test_promoting_again_to_the_same_digest_is_done_without_a_put(registry: str, immutable: str) -> None:
    pushed = image_push.push_image(registry, immutable, "release-1.0.0", seed=22)
    with serve_proxy(registry) as front:
        _watch_manifest_puts(front)
        endpoint = oci(front.host, immutable)
        assert reg.promote_image(endpoint, endpoint, pushed.digest, "release-1.0.0").mode == "noop"
        manifest = reg.ManifestBytes(pushed.manifest, pushed.media_type)
        assert endpoint.registry_api().put_tag(immutable, "release-1.0.0", manifest) is False
    assert front.injected == []  # nothing was PUT, so the front had nothing to refuse


def test_copy_into_an_immutable_repository_where_the_tag_already_names_the_digest(
    registry: str, registry2: str, aws_reset: str
) -> None:
    src_repo, dst_repo = repo(), repo()
    _ecr(aws_reset).client.create_repository(repositoryName=dst_repo, imageTagMutability="IMMUTABLE")
    pushed = image_push.push_image(registry, src_repo, "e" * 40, seed=23)
    _, sig_tag = image_push.push_referrer(registry, src_repo, pushed, suffix=".sig")
    first = reg.promote_image(oci(registry, src_repo), oci(registry2, dst_repo), pushed.digest, "release-1.0.0")
    assert (first.mode, first.referrers_copied) == ("copy", 1)
    # The signature tag exists now in an immutable repository: a second release re-checks it, sends nothing.
    with serve_proxy(registry2) as front:
        _watch_manifest_puts(front)
        second = reg.promote_image(oci(registry, src_repo), oci(front.host, dst_repo), pushed.digest, "release-1.0.1")
    assert (second.mode, second.referrers_copied, len(second.referrers)) == ("copy", 0, 1)
    assert front.injected == [f"before PUT /v2/{dst_repo}/manifests/release-1.0.1"]
    assert sig_tag in image_push.list_tags(registry2, dst_repo)


def test_a_release_tag_at_another_digest_is_refused_naming_both(registry: str, immutable: str) -> None:
    first = image_push.push_image(registry, immutable, "release-1.0.0", seed=24)
    other = image_push.push_image(registry, immutable, "f" * 40, seed=25)
    endpoint = oci(registry, immutable)
    with pytest.raises(PolicyError) as caught:
        reg.promote_image(endpoint, endpoint, other.digest, "release-1.0.0")
    assert caught.value.exit_code == ExitCode.REFUSED
    assert first.digest in caught.value.message and other.digest in caught.value.message
    assert "immutable" in caught.value.message
    assert reg.digest_of(raw_manifest(registry, immutable, "release-1.0.0")[0]) == first.digest


@pytest.mark.parametrize("racer_pushes", ["another image", "the same image"])
def test_tag_invalid_after_our_check_is_mapped_by_what_the_tag_then_names(
    registry: str, registry2: str, aws_reset: str, racer_pushes: str
) -> None:
    """INJECTED timing, real refusal: a proxy pushes the tag (through the real front) just before
    forwarding our manifest PUT, so the front answers our PUT with a real TAG_INVALID."""
    src_repo, dst_repo = repo(), repo()
    _ecr(aws_reset).client.create_repository(repositoryName=dst_repo, imageTagMutability="IMMUTABLE")
    pushed = image_push.push_image(registry, src_repo, "1" * 40, seed=26)
    racer = images.build_manifest(seed=27) if racer_pushes == "another image" else None

    def race() -> None:
        if racer is not None:
            image_push.push_manifest(registry2, dst_repo, racer, "release-1.0.0")
        else:
            image_push.put_manifest(registry2, dst_repo, "release-1.0.0", pushed.manifest, pushed.media_type)

    with serve_proxy(registry2) as front:
        front.faults = [Fault("PUT", r"/manifests/release-1\.0\.0$", "before", action=race)]
        target = oci(front.host, dst_repo)
        if racer is None:
            report = reg.promote_image(oci(registry, src_repo), target, pushed.digest, "release-1.0.0")
            assert report.digest == pushed.digest  # "already this digest" is done
        else:
            with pytest.raises(PolicyError) as caught:
                reg.promote_image(oci(registry, src_repo), target, pushed.digest, "release-1.0.0")
            assert caught.value.exit_code == ExitCode.REFUSED
            assert racer.digest in caught.value.message and pushed.digest in caught.value.message
    assert front.injected == ["before PUT /v2/" + dst_repo + "/manifests/release-1.0.0"]
    expected = pushed.digest if racer is None else racer.digest
    assert reg.digest_of(raw_manifest(registry2, dst_repo, "release-1.0.0")[0]) == expected


def test_two_builds_tag_sets_push_in_a_row_to_an_immutable_repository(
    registry: str, immutable: str, aws_reset: str
) -> None:
    """build's tag plan, from the repository's mutability as ECR reports it, pushed as buildx would."""
    mutability = reg.tag_mutability(_ecr(aws_reset).client, immutable)
    assert mutability == reg.TagMutability("IMMUTABLE")
    image = f"{registry}/{immutable}"
    for seed, commit in ((31, "a" * 40), (32, "b" * 40)):
        plan = plan_tags(image, commit, push=True, latest=None, ecr=True, mutability=mutability)
        manifest = images.build_manifest(seed=seed)
        for tag in plan.tags:
            image_push.push_manifest(registry, immutable, manifest, tag.rsplit(":", 1)[1])
    assert sorted(image_push.list_tags(registry, immutable)) == ["a" * 40, "b" * 40]
    # What build pushed before (sha + latest) fails on the second build, as on ECR.
    image_push.push_manifest(registry, immutable, images.build_manifest(seed=33), "latest")
    with pytest.raises(image_push.RegistryHTTPError, match="TAG_INVALID"):
        image_push.push_manifest(registry, immutable, images.build_manifest(seed=34), "latest")
