"""What is attached to an image (signatures, SBOMs, attestations) and carrying it along a copy.

Two ways a registry keeps them, both read:

- the OCI 1.1 referrers API (``GET /v2/<name>/referrers/<digest>``): manifests whose ``subject`` is
  the digest; copied by digest (a target that serves the API indexes them by their ``subject``);
- the tag scheme: ``sha256-<hex>`` (the OCI 1.1 fallback index) and cosign's ``sha256-<hex>.sig``,
  ``.att`` and ``.sbom``; copied under the same tag (checked first, like every tag we write).

Every referrer travels byte-exact like the image: blobs digest-checked while streaming, manifests
fetched by digest and verified, children first. Referrers of referrers are not followed.
"""

from __future__ import annotations

from dataclasses import dataclass

from deployctl.adapters.registry.copying import Copier
from deployctl.adapters.registry.manifest import ManifestBytes, referrer_tags


@dataclass(frozen=True)
class Referrer:
    digest: str
    subject: str  # the digest it is attached to
    tag: str | None = None  # set for the tag scheme
    artifact_type: str = ""

    @property
    def label(self) -> str:
        return f"{self.tag}@{self.digest}" if self.tag else self.digest


@dataclass(frozen=True)
class Found:
    referrers: tuple[Referrer, ...]
    api: bool  # whether the source serves the referrers API


def find(copier: Copier, subjects: list[str]) -> Found:
    """Every referrer of ``subjects`` in the source repository, through the API (when served) and tags."""
    src, repository = copier.src, copier.source.repository
    found: dict[tuple[str, str | None], Referrer] = {}
    api = src.referrers(repository, subjects[0]) if subjects else None
    served = api is not None
    for index, subject in enumerate(subjects):
        listed = api if index == 0 else (src.referrers(repository, subject) if served else None)
        for desc in listed or ():
            found.setdefault((desc.digest, None), Referrer(desc.digest, subject, None, desc.artifact_type))
    wanted = {tag: subject for subject in subjects for tag, subject in referrer_tags(subject).items()}
    for tag in src.list_tags(repository):
        if tag in wanted:
            digest = src.resolve(repository, tag)
            if digest is not None:
                found.setdefault((digest, tag), Referrer(digest, wanted[tag], tag))
    return Found(tuple(found.values()), served)


def copy(copier: Copier, found: Found) -> list[str]:
    """Copy each referrer (its blobs and children first); returns the labels of those written."""
    written: list[str] = []
    for referrer in found.referrers:
        graph = copier.graph(referrer.digest)
        copier.blobs(graph)
        copier.manifests(graph[:-1])
        root: ManifestBytes = graph[-1]
        before = copier.counts["manifests"]
        if referrer.tag is None:
            copier.manifests([root])
        elif copier.dst.put_tag(copier.target.repository, referrer.tag, root):
            copier.count("manifests")
        outcome = "copied" if copier.counts["manifests"] > before else "present"
        if outcome == "copied":
            written.append(referrer.label)
        if copier.progress is not None:
            copier.progress(f"referrer {referrer.label} {outcome}")
    return written
