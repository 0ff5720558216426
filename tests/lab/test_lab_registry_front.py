"""The sandbox registry refuses what ECR refuses (issue 12): a manifest PUT to an existing tag of an
IMMUTABLE repository (as the emulated ECR holds it) is refused with ECR's TAG_INVALID, even for
identical bytes; new tags, pushes by digest, MUTABLE and unknown repositories go through. Everything
else streams through the front unchanged."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deployctl.sandbox import image_push, images
from deployctl.sandbox.lab import Lab
from deployctl.sandbox.processes import Launch, Processes
from deployctl.sandbox.procfs import processes_in_groups
from deployctl.sandbox.tools import Tools

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def ecr(moto_url: str) -> Any:
    import boto3

    return boto3.client(
        "ecr",
        endpoint_url=moto_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _repository(ecr: Any, mutability: str | None) -> str:
    """A repository new to this test: created in moto with ``mutability``, or unknown to it (None)."""
    name = f"front/{(mutability or 'unknown').lower()}-{uuid.uuid4().hex[:8]}"
    if mutability is not None:
        ecr.create_repository(repositoryName=name, imageTagMutability=mutability)
    return name


def _tag_invalid(name: str, tag: str) -> dict[str, Any]:
    message = (
        f"The image tag '{tag}' already exists in the '{name}' repository and cannot be overwritten "
        "because the repository is immutable."
    )
    return {"errors": [{"code": "TAG_INVALID", "message": message}]}


def _put(registry: str, name: str, reference: str, image: images.SyntheticImage) -> str:
    return image_push.put_manifest(registry, name, reference, image.data, image.media_type)


def test_re_push_of_an_existing_tag_to_an_immutable_repository_is_refused_as_ecr_refuses_it(
    ecr: Any, registry: str
) -> None:
    name = _repository(ecr, "IMMUTABLE")
    first = image_push.push_image(registry, name, "v1", seed=11)
    other = images.build_manifest(seed=12)
    image_push.push_manifest(registry, name, other)  # its blobs and the manifest by digest: accepted

    with pytest.raises(image_push.RegistryHTTPError) as caught:
        _put(registry, name, "v1", other)

    assert caught.value.status == 400
    assert json.loads(caught.value.body) == _tag_invalid(name, "v1")
    assert image_push.get_manifest(registry, name, "v1")[2] == first.digest  # the tag did not move


def test_identical_bytes_are_refused_too(ecr: Any, registry: str) -> None:
    name = _repository(ecr, "IMMUTABLE")
    pushed = image_push.push_image(registry, name, "v1", seed=21)

    with pytest.raises(image_push.RegistryHTTPError) as caught:
        image_push.put_manifest(registry, name, "v1", pushed.manifest, pushed.media_type)

    assert caught.value.status == 400
    assert json.loads(caught.value.body) == _tag_invalid(name, "v1")


def test_a_new_tag_and_a_push_by_digest_go_through_to_an_immutable_repository(ecr: Any, registry: str) -> None:
    name = _repository(ecr, "IMMUTABLE")
    pushed = image_push.push_image(registry, name, "v1", seed=31)

    assert image_push.put_manifest(registry, name, "v2", pushed.manifest, pushed.media_type) == pushed.digest
    # by digest, again, with the same bytes: content-addressed, nothing to overwrite
    assert image_push.put_manifest(registry, name, pushed.digest, pushed.manifest, pushed.media_type) == pushed.digest

    assert sorted(image_push.list_tags(registry, name)) == ["v1", "v2"]
    assert image_push.get_manifest(registry, name, "v2")[2] == pushed.digest


@pytest.mark.parametrize("mutability", ["MUTABLE", None])
def test_a_mutable_or_unknown_repository_accepts_a_re_push(ecr: Any, registry: str, mutability: str | None) -> None:
    name = _repository(ecr, mutability)
    image_push.push_image(registry, name, "latest", seed=41)
    second = images.build_manifest(seed=42)
    image_push.push_manifest(registry, name, second)

    assert _put(registry, name, "latest", second) == second.digest

    assert image_push.get_manifest(registry, name, "latest")[2] == second.digest


def test_the_second_registry_enforces_mutability_too(ecr: Any, registry2: str) -> None:
    name = _repository(ecr, "IMMUTABLE")
    pushed = image_push.push_image(registry2, name, "v1", seed=51)

    with pytest.raises(image_push.RegistryHTTPError) as caught:
        image_push.put_manifest(registry2, name, "v1", pushed.manifest, pushed.media_type)

    assert caught.value.status == 400


# --------------------------------------------------------------------------- streaming


def _request(
    host: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, chunked: bool = False
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, timeout=120)
    try:
        conn.request(method, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def _with_digest(path: str, digest: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}digest={digest}"


def _pieces(data: bytes, size: int) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_chunked_upload_and_a_range_read_stream_through_with_headers_and_locations_kept(
    lab: Lab, registry: str
) -> None:
    data = os.urandom(5 * 2**20 + 7)
    digest = images.digest_of(data)
    status, headers, _ = _request(registry, "POST", "/v2/front/stream/blobs/uploads/", b"")
    assert status == 202
    location = headers["location"]
    assert location.startswith(f"http://{registry}/v2/front/stream/blobs/uploads/")  # the front, not the backend
    assert headers["docker-upload-uuid"] in location

    path = location.removeprefix(f"http://{registry}")
    status, headers, _ = _request(registry, "PATCH", path, _pieces(data, 65536), chunked=True)
    assert status == 202
    assert headers["range"] == f"0-{len(data) - 1}"
    path = headers["location"].removeprefix(f"http://{registry}")
    status, headers, _ = _request(registry, "PUT", _with_digest(path, digest), b"", {"Content-Length": "0"})
    assert status == 201
    assert headers["docker-content-digest"] == digest

    status, headers, body = _request(
        registry, "GET", f"/v2/front/stream/blobs/{digest}", headers={"Range": "bytes=10-19"}
    )
    assert status == 206
    assert body == data[10:20]
    assert headers["content-range"] == f"bytes 10-19/{len(data)}"
    status, headers, body = _request(registry, "HEAD", f"/v2/front/stream/blobs/{digest}")
    assert (status, headers["content-length"], headers["docker-content-digest"], body) == (
        200,
        str(len(data)),
        digest,
        b"",
    )
    backend = lab.registry_backend_hosts[0]
    assert _request(backend, "GET", f"/v2/front/stream/blobs/{digest}")[2] == data  # stored as sent


def test_a_location_naming_the_backend_is_rewritten_to_the_front(lab_tools: Tools, tmp_path: Path) -> None:
    """A registry configured with its own absolute URL (``http.host``) answers with Locations that name
    it; through the front they name the front (a client must never be sent around it)."""
    processes = Processes(tmp_path)
    config = tmp_path / "config.yml"

    def configure(ports: list[int]) -> None:
        config.write_text(
            f"version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {tmp_path / 'data'}\n"
            f"http:\n  addr: 127.0.0.1:{ports[0]}\n  host: http://127.0.0.1:{ports[0]}\n"
        )

    backend = Launch(
        "backend",
        lambda _ports: [lab_tools["docker-registry"], "serve", config],
        lambda ports: f"127.0.0.1:{ports[0]}",
        probe="http",
        probe_path="/v2/",
        prepare=configure,
    )
    processes.start([backend], 30)
    backend_host = processes.get("backend").endpoint
    front = Launch(
        "front",
        lambda _ports: [sys.executable, "-m", "deployctl.sandbox.registry_front", "--backend", backend_host],
        lambda ports: f"127.0.0.1:{ports[0]}",
        probe="http",
        probe_path="/v2/",
        port_zero=True,
    )
    try:
        processes.start([front], 30)
        front_host = processes.get("front").endpoint
        direct = _request(backend_host, "POST", "/v2/front/located/blobs/uploads/", b"", {"Host": "elsewhere:1"})
        through = _request(front_host, "POST", "/v2/front/located/blobs/uploads/", b"")
    finally:
        processes.stop()

    assert direct[0] == through[0] == 202
    assert direct[1]["location"].startswith(f"http://{backend_host}/v2/front/located/blobs/uploads/")
    assert through[1]["location"].startswith(f"http://{front_host}/v2/front/located/blobs/uploads/")


BIG = 200 * 2**20


def _push_and_pull(host: str, repository: str, data: bytes, digest: str) -> tuple[float, float]:
    started = time.monotonic()
    status, headers, _ = _request(host, "POST", f"/v2/{repository}/blobs/uploads/", b"")
    assert status == 202, status
    location = headers["location"]
    path = location[location.index("/v2/") :]
    status, _, body = _request(
        host, "PUT", _with_digest(path, digest), data, {"Content-Type": "application/octet-stream"}
    )
    assert status == 201, body
    pushed = time.monotonic() - started
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, timeout=120)
    try:
        conn.request("GET", f"/v2/{repository}/blobs/{digest}")
        response = conn.getresponse()
        assert response.status == 200
        sha = hashlib.sha256()
        while piece := response.read(2**20):
            sha.update(piece)
    finally:
        conn.close()
    assert f"sha256:{sha.hexdigest()}" == digest
    return pushed, time.monotonic() - started


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def test_a_200_mb_blob_streams_through_the_front_in_constant_memory(lab: Lab, registry: str) -> None:
    """Push and pull a 200 MB blob directly to the CNCF registry and through the front, interleaved;
    the bytes arrive intact and the front's peak memory stays far below the blob's size. Prints the
    times and the overhead ratio."""
    data = os.urandom(BIG)
    digest = images.digest_of(data)
    backend = lab.registry_backend_hosts[0]
    front = lab.services["registry-0"]
    times: dict[str, list[float]] = {"direct": [], "front": []}
    for attempt in range(3):
        for via, host in (("direct", backend), ("front", registry)):
            # a new repository each time: the blob is uploaded, not found already there
            push, pull = _push_and_pull(host, f"front/big-{via}-{attempt}", data, digest)
            times[via].append(push + pull)
    assert processes_in_groups([front.pid]) == [front.pid]  # one process: no helper holding the bytes
    peak_mib = _peak_rss_kib(front.pid) / 1024
    assert peak_mib < 80, f"the front buffered: peak RSS {peak_mib:.0f} MiB"
    direct, through = statistics.median(times["direct"]), statistics.median(times["front"])
    os.write(
        2,
        f"[measure] 200 MB blob push+pull, median of 3: direct {direct:.2f}s, through the front {through:.2f}s, "
        f"ratio {through / direct:.2f}x; front peak RSS {peak_mib:.0f} MiB\n".encode(),
    )
