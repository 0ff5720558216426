"""deployctl.adapters.registry against real CNCF distribution registries (the lab's) and moto's ECR API.

Digests are asserted only against the real registries: moto computes ECR digests from the
layers, not the manifest bytes, so there only the control flow is checked.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import re
import socket
import struct
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import boto3
import pytest

from deployctl.adapters import registry as reg
from deployctl.core.errors import PolicyError
from deployctl.sandbox import image_push, images

pytestmark = pytest.mark.lab

FAST = reg.RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05, connect_timeout=2, read_timeout=1.0)


def repo() -> str:
    return f"t{uuid.uuid4().hex[:8]}/api"


def oci(host: str, repository: str, policy: reg.RetryPolicy = FAST) -> reg.Endpoint:
    return reg.Endpoint(host, repository, oci=reg.OciRegistry(host, policy=policy))


def raw_manifest(host: str, repository: str, reference: str) -> tuple[bytes, str]:
    data, media_type, _ = image_push.get_manifest(host, repository, reference)
    return data, media_type


def push_index(host: str, repository: str, tag: str, layer_size: int = 64 * 1024) -> image_push.PushedImage:
    """An OCI index: two platform manifests and a BuildKit-style attestation manifest."""
    pushed = image_push.push_image(host, repository, tag, layer_size=layer_size, multi_platform=True, attestation=True)
    assert len(pushed.platforms) == 2
    assert len(pushed.attestations) >= 1
    return pushed


def children_and_blobs(host: str, repository: str, pushed: image_push.PushedImage) -> tuple[int, int]:
    """How many child manifests the index lists and how many distinct blobs they reference."""
    children = reg.ManifestBytes(pushed.manifest, reg.OCI_INDEX).children()
    blobs: set[str] = set()
    for child in children:
        data, media_type = raw_manifest(host, repository, child.digest)
        blobs.update(b.digest for b in reg.ManifestBytes(data, media_type).blobs())
    return len(children), len(blobs)


def test_index_retag_within_a_repository_moves_only_the_manifest(registry: str) -> None:
    repository = repo()
    pushed = push_index(registry, repository, "c" * 40)
    source = oci(registry, repository)
    report = reg.promote_image(source, source, pushed.digest, "release-1.0.0")
    assert report.mode == "oci-retag"
    assert (report.manifests_put, report.blobs_copied, report.bytes_copied) == (1, 0, 0)
    data, media_type = raw_manifest(registry, repository, "release-1.0.0")
    assert data == pushed.manifest  # byte-exact
    assert media_type == reg.OCI_INDEX
    assert reg.digest_of(data) == pushed.digest
    # idempotent: the same tag at the same digest is a no-op
    assert reg.promote_image(source, source, pushed.digest, "release-1.0.0").mode == "noop"


def test_index_copy_across_registries_is_byte_exact_and_copies_only_what_is_missing(
    registry: str, registry2: str
) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = push_index(registry, src_repo, "d" * 40)
    source, target = oci(registry, src_repo), oci(registry2, dst_repo)
    report = reg.promote_image(source, target, pushed.digest, "release-1.0.0")
    children, blobs = children_and_blobs(registry, src_repo, pushed)
    assert children == 2 + len(pushed.attestations)
    assert (report.mode, report.blobs_copied, report.blobs_present, report.manifests_put) == (
        "copy",
        blobs,
        0,
        children + 1,
    )
    assert report.bytes_copied >= 2 * 64 * 1024  # two platform layers, plus configs and attestations
    data, _ = raw_manifest(registry2, dst_repo, "release-1.0.0")
    assert data == pushed.manifest
    for child in [*pushed.platforms.values(), *pushed.attestations]:
        assert raw_manifest(registry2, dst_repo, child)[0] == raw_manifest(registry, src_repo, child)[0]
    # A second tag of the same image: every blob and child is already there; nothing is downloaded.
    again = reg.promote_image(source, target, pushed.digest, "release-1.0.1")
    assert (again.blobs_copied, again.bytes_copied, again.blobs_present, again.manifests_put) == (0, 0, blobs, 1)


def test_copy_within_a_host_mounts_blobs_instead_of_copying(registry: str) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = push_index(registry, src_repo, "e" * 40)
    report = reg.promote_image(oci(registry, src_repo), oci(registry, dst_repo), pushed.digest, "release-2.0.0")
    _, blobs = children_and_blobs(registry, src_repo, pushed)
    assert (report.blobs_mounted, report.blobs_copied, report.bytes_copied) == (blobs, 0, 0)
    assert raw_manifest(registry, dst_repo, "release-2.0.0")[0] == pushed.manifest


def test_existing_release_tag_at_another_digest_is_refused_and_kept(registry: str) -> None:
    repository = repo()
    first = image_push.push_image(registry, repository, "release-1.0.0", seed=1)
    other = image_push.push_image(registry, repository, "f" * 40, seed=2)
    with pytest.raises(PolicyError, match="already points at"):
        reg.promote_image(oci(registry, repository), oci(registry, repository), other.digest, "release-1.0.0")
    assert reg.digest_of(raw_manifest(registry, repository, "release-1.0.0")[0]) == first.digest


def test_streamed_copy_memory_does_not_grow_with_layer_size(registry: str, registry2: str) -> None:
    size = 48 * 1024 * 1024
    src_repo, dst_repo = repo(), repo()
    pushed = image_push.push_image(registry, src_repo, "a" * 40, layer_size=size, seed=7)
    tracemalloc.start()
    started = time.monotonic()
    try:
        report = reg.promote_image(oci(registry, src_repo), oci(registry2, dst_repo), pushed.digest, "release-3.0.0")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    seconds = time.monotonic() - started
    assert report.bytes_copied >= size
    assert peak < 8 * 1024 * 1024, f"peak Python memory {peak} bytes for a {size}-byte layer"
    print(f"copied {report.bytes_copied} bytes in {seconds:.2f}s; peak traced memory {peak} bytes")


# ---- failures injected by a proxy ---------------------------------------------------------------
#
# FaultProxy exists only to inject failures: it forwards every request to the real lab registry
# unchanged, except the ones a test tells it to break (503, connection reset, stall past the timeout,
# a response body with one byte flipped, or something done just before the request is forwarded).


@dataclass
class Fault:
    method: str
    path: str  # regex on the request path
    kind: str  # "503" | "reset" | "stall" | "corrupt" | "before"
    times: int = 1  # how many matching requests to break (-1: all)
    action: Callable[[], None] | None = None  # for "before": run, then forward the request


@dataclass
class FaultProxy:
    upstream: str
    faults: list[Fault] = field(default_factory=list)
    injected: list[str] = field(default_factory=list)
    host: str = ""
    _server: http.server.ThreadingHTTPServer | None = None

    def match(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times != 0 and fault.method == method and re.search(fault.path, path):
                fault.times -= 1 if fault.times > 0 else 0
                self.injected.append(f"{fault.kind} {method} {path}")
                return fault
        return None


def _handler(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002, ARG002 - the base signature
            return

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            fault = proxy.match(self.command, self.path)
            if fault is not None and fault.kind == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault is not None and fault.kind == "stall":
                time.sleep(FAST.read_timeout * 2)
                self.close_connection = True
                return
            if fault is not None and fault.kind == "before" and fault.action is not None:
                fault.action()
            elif fault is not None and fault.kind != "corrupt":
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            upstream = http.client.HTTPConnection(proxy.upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            if fault is not None and fault.kind == "corrupt" and data:
                data = bytes([data[0] ^ 0xFF]) + data[1:]
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(key, value)
            length_header = response.getheader("Content-Length")
            self.send_header("Content-Length", (length_header or "0") if self.command == "HEAD" else str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            upstream.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward  # noqa: N815

    return Handler


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:  # noqa: ARG002 - the base signature
        return  # the resets are deliberate


@pytest.fixture
def fault_proxy(registry2: str) -> Iterator[FaultProxy]:
    with serve_proxy(registry2) as proxy:
        yield proxy


@contextlib.contextmanager
def serve_proxy(upstream: str) -> Iterator[FaultProxy]:
    """A FaultProxy in front of ``upstream`` for the block."""
    proxy = FaultProxy(upstream)
    server = _QuietServer(("127.0.0.1", 0), _handler(proxy))
    proxy.host = f"127.0.0.1:{server.server_address[1]}"
    proxy._server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def test_transient_faults_are_retried_and_the_copy_succeeds(registry: str, fault_proxy: FaultProxy) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = push_index(registry, src_repo, "1" * 40)
    fault_proxy.faults = [
        Fault("HEAD", r"/blobs/sha256:", "stall"),
        Fault("PATCH", r"/blobs/uploads/", "reset"),
        Fault("POST", r"/blobs/uploads/", "503"),
        Fault("PUT", r"/manifests/sha256:", "503"),
        Fault("PUT", r"/manifests/release-", "reset"),
    ]
    report = reg.promote_image(oci(registry, src_repo), oci(fault_proxy.host, dst_repo), pushed.digest, "release-1.0.0")
    assert len(fault_proxy.injected) == 5, fault_proxy.injected
    assert report.digest == pushed.digest
    assert raw_manifest(fault_proxy.upstream, dst_repo, "release-1.0.0")[0] == pushed.manifest


@pytest.mark.parametrize(
    ("fault", "stage"),
    [
        (Fault("PUT", r"/manifests/release-", "503", times=-1), "put manifest"),
        (Fault("PATCH", r"/blobs/uploads/", "reset", times=-1), "copy blob"),
        (Fault("HEAD", r"/blobs/", "stall", times=-1), "check blob"),
    ],
    ids=["manifest-503", "blob-reset", "blob-timeout"],
)
def test_persistent_faults_leave_the_target_tag_where_it_was(
    registry: str, fault_proxy: FaultProxy, fault: Fault, stage: str
) -> None:
    src_repo, dst_repo = repo(), repo()
    pushed = image_push.push_image(registry, src_repo, "2" * 40, seed=3)
    fault_proxy.faults = [fault]
    with pytest.raises(reg.RegistryError) as caught:
        reg.promote_image(oci(registry, src_repo), oci(fault_proxy.host, dst_repo), pushed.digest, "release-1.0.0")
    message = caught.value.message
    assert f"{stage}" in message
    assert f"after {FAST.attempts} attempts" in message
    assert "was not moved" in message
    assert image_push.list_tags(fault_proxy.upstream, dst_repo) == []


# ---- ECR API (moto): control flow only ---------------------------------------------------------

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def ecr(aws_reset: str) -> reg.Ecr:
    client = boto3.client(
        "ecr",
        region_name="us-east-1",
        endpoint_url=aws_reset,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # moto's documented fake credentials
    )
    client.create_repository(repositoryName="api")
    return reg.Ecr(client, "123456789012")


def test_ecr_same_repository_retag_uses_batch_get_and_put_image(ecr: reg.Ecr) -> None:
    manifest = images.build_index(attestation=True, layer_size=16, seed=5)
    ecr.client.put_image(
        repositoryName="api",
        imageManifest=manifest.data.decode(),
        imageManifestMediaType=manifest.media_type,
        imageTag="9" * 40,
    )
    source_digest = ecr.describe("api", "9" * 40)
    assert source_digest is not None
    endpoint = reg.Endpoint(ECR_HOST, "api", ecr=ecr)
    report = reg.promote_image(endpoint, endpoint, source_digest, "release-1.0.0")
    assert report.mode == "ecr-retag"
    assert ecr.describe("api", "release-1.0.0") == source_digest
    stored = ecr.client.batch_get_image(repositoryName="api", imageIds=[{"imageTag": "release-1.0.0"}])["images"][0]
    assert stored["imageManifest"] == manifest.data.decode()  # the exact string, never re-serialized
    assert stored["imageManifestMediaType"] == reg.OCI_INDEX
    assert reg.promote_image(endpoint, endpoint, source_digest, "release-1.0.0").mode == "noop"


def test_ecr_tag_at_another_image_is_refused(ecr: reg.Ecr) -> None:
    for seed, tag in ((1, "release-1.0.0"), (2, "8" * 40)):
        manifest = images.build_manifest(layer_size=16, seed=seed)
        ecr.client.put_image(repositoryName="api", imageManifest=manifest.data.decode(), imageTag=tag)
    endpoint = reg.Endpoint(ECR_HOST, "api", ecr=ecr)
    wanted = ecr.describe("api", "8" * 40)
    assert wanted is not None
    before = ecr.describe("api", "release-1.0.0")
    with pytest.raises(PolicyError, match="immutable"):
        reg.promote_image(endpoint, endpoint, wanted, "release-1.0.0")
    assert ecr.describe("api", "release-1.0.0") == before


def test_ecr_missing_repository_is_a_clear_error(ecr: reg.Ecr) -> None:
    with pytest.raises(reg.RegistryError) as caught:
        ecr.get("nope", tag="x")
    assert "RepositoryNotFoundException" in caught.value.message
