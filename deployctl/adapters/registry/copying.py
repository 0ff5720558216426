"""Copy manifests and their blobs from one repository to another, byte-exact (by digest, never by tag).

What the target lacks moves (HEAD first, a cross-repository mount on the same host, else a streamed
upload with bounded parallelism); every blob's sha256 is checked while it streams and a mismatch
abandons the upload before it is committed. Manifests are PUT by digest, children before parents.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from deployctl.adapters.registry.errors import RegistryError, TransientError
from deployctl.adapters.registry.manifest import Descriptor, ManifestBytes
from deployctl.adapters.registry.oci import CHUNK, OciRegistry
from deployctl.adapters.registry.oci_http import DEFAULT_PARALLEL, reason
from deployctl.adapters.registry.retry import with_retries

if TYPE_CHECKING:
    from deployctl.adapters.registry.endpoints import Endpoint


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


class BlobStream:
    """One blob's bytes from the source's response to the upload's socket, hashed and counted on the way.

    Each piece is read into one reused buffer, hashed there and sent from there (the upload iterates it):
    no copy of the bytes in Python, 1 MiB per socket call instead of urllib3's 16 KiB blocks, and
    hashlib releases the GIL while it hashes (pieces > 2047 bytes), so the other streams run meanwhile.
    A source that ends early raises at once (the upload is abandoned, not left waiting for the rest).
    """

    def __init__(self, response: Any, size: int, what: str, chunk: int = CHUNK) -> None:
        self._response = response
        self._size = size
        self._what = what
        self._chunk = chunk
        self._hash = hashlib.sha256()
        self.count = 0

    def __iter__(self) -> Iterator[memoryview]:
        readinto = _raw_readinto(self._response)
        buffer = memoryview(bytearray(min(self._chunk, max(self._size, 1))))
        while self.count < self._size:
            got = readinto(buffer[: min(len(buffer), self._size - self.count)])
            if not got:
                raise TransientError(f"{self._what}: the source ended after {self.count} of {self._size} bytes")
            piece = buffer[:got]
            self._hash.update(piece)
            self.count += got
            yield piece  # sent (sendall) before the next read reuses the buffer

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def _raw_readinto(response: Any) -> Callable[[memoryview], int]:
    """``readinto`` of the body as sent: http.client's under urllib3's response (urllib3 2 has no public
    zero-copy read), else a copying fallback through ``read`` (another client, or a content encoding)."""
    raw = getattr(response, "_fp", None)
    encoded = str(response.headers.get("Content-Encoding") or "identity").lower() != "identity"
    if raw is not None and hasattr(raw, "readinto") and not encoded:
        return raw.readinto  # type: ignore[no-any-return]

    def fallback(view: memoryview) -> int:
        data: bytes = response.read(len(view))
        view[: len(data)] = data
        return len(data)

    return fallback


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
        stream = BlobStream(response, size, f"blob {blob.digest[:19]} from {src.host}")

        def verify() -> None:
            if stream.count != size:
                raise TransientError(f"blob {blob.digest[:19]}: read {stream.count} of {size} bytes")
            if stream.digest != blob.digest:
                raise RegistryError(
                    f"blob {blob.digest} read from {src.host}/{src_repo} hashes to {stream.digest}: "
                    "digest check failed, nothing was committed",
                    "the source registry served corrupt content: check its storage, then re-run",
                )

        try:
            dst.upload_blob(dst_repo, blob.digest, size, stream, verify=verify)
        except (urllib3.exceptions.HTTPError, OSError) as exc:  # a source reset surfaces inside the upload
            state = "not answering" if isinstance(exc, urllib3.exceptions.TimeoutError) else "not reachable"
            raise TransientError(f"streaming {blob.digest[:19]}: {reason(exc)}", state=state) from None
        return stream.count
    finally:
        if not _at_end(response):  # bytes left unread would be read as the next answer on this connection
            response.close()
        response.release_conn()


def _at_end(response: Any) -> bool:
    raw = getattr(response, "_fp", None)
    return raw is None or bool(getattr(raw, "isclosed", lambda: True)())
