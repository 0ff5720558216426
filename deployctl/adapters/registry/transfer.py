"""Promotion transfer: make ``target:tag`` name exactly a digest of ``source``, by retag or copy.

- Same ECR repository: ``BatchGetImage`` then ``PutImage`` with the exact manifest (metadata only).
- Same OCI repository: GET the manifest by digest, PUT the same bytes under the tag.
- Anything else: copy what the target lacks (blobs, every child manifest of an index by digest),
  then the image's referrers (signatures, SBOMs, attestations), and the tagged manifest last, so a
  failure never moves the tag.

Every tag write checks what the tag names first: "already this digest" is done (nothing sent),
another digest is refused (tags are immutable), and so is a registry's ``TAG_INVALID`` answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from deployctl.adapters.registry import referrers
from deployctl.adapters.registry.copying import Copier, need_manifest
from deployctl.adapters.registry.endpoints import Endpoint
from deployctl.adapters.registry.errors import RegistryError, TransientError, tag_conflict
from deployctl.adapters.registry.oci_http import DEFAULT_PARALLEL


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
    referrers: tuple[str, ...] = ()  # every referrer carried along ("tag@digest" for the tag scheme)
    referrers_copied: int = 0  # of those, how many the target lacked
    referrers_api: bool | None = None  # whether the source serves the OCI referrers API (None: not asked)
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
            "referrers": list(self.referrers),
            "referrers_copied": self.referrers_copied,
            "referrers_api": self.referrers_api,
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
    with_referrers: bool = True,
    before_tag: Callable[[], None] | None = None,
) -> TransferReport:
    """Make ``target:tag`` name exactly ``digest`` from ``source``; the tag moves last, or not at all.

    An existing ``tag`` at another digest is refused (release tags are immutable); a copy carries
    the image's referrers along unless ``with_referrers`` is False. ``before_tag`` runs right before the
    tag is written and may refuse it by raising (the promotion's lock check): what was copied before,
    by digest, names nothing.
    """
    check = before_tag or (lambda: None)
    started = time.monotonic()
    name = f"{target.name}:{tag}"
    current = target.resolve(tag)
    if current == digest:
        return TransferReport("noop", digest, name, seconds=time.monotonic() - started)
    if current is not None:
        raise tag_conflict(target.name, tag, current, digest)
    mode = transfer_mode(source, target)
    try:
        if mode == "ecr-retag" and source.ecr is not None:
            manifest, ecr_digest = source.ecr.get(source.repository, digest=digest)
            _check_digest(ecr_digest, digest, target, tag)
            check()
            put = source.ecr.put(target.repository, tag, manifest, digest, name=target.name)
            report = TransferReport(mode, digest, name, manifests_put=int(put))
        elif mode == "oci-retag":
            registry = source.registry_api()
            manifest = need_manifest(registry, source, digest)
            check()
            put = registry.put_tag(target.repository, tag, manifest)
            report = TransferReport(mode, digest, name, manifests_put=int(put))
        else:
            copier = Copier(source, target, parallel, progress)
            report = _copy(copier, digest, tag, with_referrers=with_referrers, before_tag=check)
    except RegistryError as exc:
        raise RegistryError(
            f"{exc.message}\nthe target tag {name} was {_tag_state(target, tag, current)}",
            exc.hint or "the registry may be unavailable: re-run the same promote when it is healthy (it resumes)",
            details=exc.details,
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


def _check_digest(got: str, expected: str, target: Endpoint, tag: str) -> None:
    if got != expected:
        raise RegistryError(f"{target.name}:{tag} was stored as {got}, expected {expected}")


def _copy(
    copier: Copier, digest: str, tag: str, *, with_referrers: bool, before_tag: Callable[[], None]
) -> TransferReport:
    target = copier.target
    ordered = copier.graph(digest)
    root = ordered[-1]
    # Finding the referrers only reads the source (a referrers query and a tag list: ~50-100 ms on the
    # lab's registry), so it runs while the blobs stream; its failure is raised after theirs.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="referrers") as side:
        finding = side.submit(referrers.find, copier, [m.digest for m in reversed(ordered)]) if with_referrers else None
        copier.blobs(ordered)
        copier.manifests(ordered[:-1])
        found = finding.result() if finding is not None else None
    written: list[str] = []
    if found is not None and found.referrers:
        # The subject first (by digest), then what refers to it; the tag still moves last.
        copier.manifests([root])
        written = referrers.copy(copier, found)
    before_tag()
    if copier.dst.put_tag(target.repository, tag, root):
        copier.count("manifests")
    final = copier.dst.resolve(target.repository, tag)
    _check_digest(final or "nothing", digest, target, tag)
    counts = copier.counts
    return TransferReport(
        "copy",
        digest,
        f"{target.name}:{tag}",
        manifests_put=counts["manifests"],
        blobs_present=counts["present"],
        blobs_mounted=counts["mounted"],
        blobs_copied=counts["copied"],
        bytes_copied=counts["bytes"],
        referrers=tuple(r.label for r in found.referrers) if found else (),
        referrers_copied=len(written),
        referrers_api=found.api if found else None,
    )
