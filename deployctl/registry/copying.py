"""Copy manifests and their blobs from one repository to another, byte-exact (by digest, never by tag).

What the target lacks moves (HEAD first, a cross-repository mount on the same host, else a streamed
upload with bounded parallelism); every blob's sha256 is checked while it streams and a mismatch
abandons the upload before it is committed. Manifests are PUT by digest, children before parents.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from deployctl.registry.errors import RegistryError, TransientError
from deployctl.registry.manifest import Descriptor, ManifestBytes
from deployctl.registry.oci import DEFAULT_PARALLEL, HashingReader, OciRegistry, reason
from deployctl.registry.retry import with_retries

if TYPE_CHECKING:
    from deployctl.registry.endpoints import Endpoint


def need_manifest(registry: OciRegistry, endpoint: Endpoint, digest: str) -> ManifestBytes:
    manifest = registry.get_manifest(endpoint.repository, digest)
    if manifest is None:
        raise RegistryError(f"{endpoint.name}@{digest} does not exist")
    return manifest


@dataclass
class Copier:
    """Copies from ``source`` to ``target`` and counts what it did (``counts``: present, mounted,
    copied blobs, bytes, manifests put)."""

    source: Endpoint
    target: Endpoint
    parallel: int = DEFAULT_PARALLEL
    progress: Callable[[str], None] | None = None
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def src(self) -> OciRegistry:
        return self.source.registry_api()

    @property
    def dst(self) -> OciRegistry:
        return self.target.registry_api()

    def graph(self, digest: str) -> list[ManifestBytes]:
        """``digest``'s manifest and every manifest under it, children before parents (root last)."""
        ordered: list[ManifestBytes] = []
        self._collect(need_manifest(self.src, self.source, digest), ordered, set())
        return ordered

    def _collect(self, manifest: ManifestBytes, out: list[ManifestBytes], seen: set[str]) -> None:
        if manifest.digest in seen:
            return
        seen.add(manifest.digest)
        for child in manifest.children():
            self._collect(need_manifest(self.src, self.source, child.digest), out, seen)
        out.append(manifest)

    def blobs(self, manifests: Iterable[ManifestBytes]) -> None:
        """Make every (non-foreign) blob of ``manifests`` present in the target."""
        wanted: dict[str, Descriptor] = {}
        for manifest in manifests:
            for blob in manifest.blobs():
                if not blob.foreign:
                    wanted.setdefault(blob.digest, blob)
        with ThreadPoolExecutor(max_workers=max(1, self.parallel), thread_name_prefix="blob") as pool:
            # list(): re-raise the first failure here, before any manifest is written
            list(pool.map(self._move, wanted.values()))

    def manifests(self, manifests: Iterable[ManifestBytes]) -> None:
        """PUT each manifest by digest unless the target has it (children must come first)."""
        for manifest in manifests:
            if self.dst.resolve(self.target.repository, manifest.digest) is None:
                self.dst.put_manifest(self.target.repository, manifest.digest, manifest)
                self.count("manifests")

    def count(self, what: str, amount: int = 1) -> None:
        with self._lock:
            self.counts[what] += amount

    def _move(self, blob: Descriptor) -> None:
        source, target = self.source, self.target
        if self.dst.blob_exists(target.repository, blob.digest):
            outcome = "present"
        elif source.host == target.host and self.dst.mount_blob(target.repository, blob.digest, source.repository):
            outcome = "mounted"
        else:
            # No deadline: a healthy copy of a large blob may take minutes; each try is bounded by the read timeout.
            copied = with_retries(
                f"copy blob {blob.digest[:19]} ({blob.size} bytes) from {source.host}",
                self.src.policy,
                lambda: copy_blob(self.src, source.repository, self.dst, target.repository, blob),
                deadline=False,
            )
            self.count("bytes", copied)
            outcome = "copied"
        self.count(outcome)
        if self.progress is not None:
            self.progress(f"blob {blob.digest[:19]} {outcome}")


def copy_blob(src: OciRegistry, src_repo: str, dst: OciRegistry, dst_repo: str, blob: Descriptor) -> int:
    """Stream one blob from ``src`` to ``dst`` (memory bounded by the chunk size); returns bytes sent.

    The bytes are hashed as they pass: a blob that does not hash to its digest is never committed."""
    import urllib3

    response = src.open_blob(src_repo, blob.digest)
    try:
        size = blob.size
        if size < 0:
            size = int(response.headers.get("Content-Length", "-1"))
        if size < 0:
            raise RegistryError(f"blob {blob.digest} has no known size")
        reader = HashingReader(response)

        def verify() -> None:
            if reader.count != size:
                raise TransientError(f"blob {blob.digest[:19]}: read {reader.count} of {size} bytes")
            if reader.digest != blob.digest:
                raise RegistryError(
                    f"blob {blob.digest} read from {src.host}/{src_repo} hashes to {reader.digest}: "
                    "digest check failed, nothing was committed",
                    "the source registry served corrupt content: check its storage, then re-run",
                )

        try:
            dst.upload_blob(dst_repo, blob.digest, size, reader, verify=verify)
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # a source reset surfaces inside the upload
            state = "not answering" if isinstance(exc, urllib3.exceptions.TimeoutError) else "not reachable"
            raise TransientError(f"streaming {blob.digest[:19]}: {reason(exc)}", state=state) from None
        return reader.count
    finally:
        response.release_conn()
