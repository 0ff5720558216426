"""BlobStream: the bytes of one blob from a response to an upload, hashed in one reused buffer."""

from __future__ import annotations

import hashlib
import http.client
import io

import pytest

from deployctl.adapters.registry.copying import BlobStream
from deployctl.adapters.registry.errors import TransientError

DATA = bytes(range(256)) * 40  # 10 KiB


class _Socket:
    """Just enough socket for http.client to parse a canned answer (as CPython's own tests do)."""

    def __init__(self, answer: bytes) -> None:
        self._answer = answer

    def makefile(self, mode: str) -> io.BufferedReader:  # noqa: ARG002 - the socket signature
        return io.BufferedReader(io.BytesIO(self._answer))


def _raw(body: bytes) -> http.client.HTTPResponse:
    """http.client's response to a GET (what urllib3's response wraps as ``_fp``)."""
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    response = http.client.HTTPResponse(_Socket(head + body), method="GET")  # type: ignore[arg-type]
    response.begin()
    return response


class _Response:
    def __init__(self, body: bytes, *, raw: bool, encoding: str | None = None) -> None:
        self._fp = _raw(body) if raw else None
        self._body = io.BytesIO(body)
        self.headers = {"Content-Encoding": encoding} if encoding else {}
        self.reads: list[int] = []

    def read(self, amt: int) -> bytes:
        self.reads.append(amt)
        return self._body.read(amt)


def _drain(stream: BlobStream) -> list[bytes]:
    return [bytes(piece) for piece in stream]  # copy each piece: the buffer is reused


@pytest.mark.parametrize("raw", [True, False], ids=["readinto", "read-fallback"])
def test_every_byte_passes_once_hashed_in_pieces_of_the_chunk_size(raw: bool) -> None:
    response = _Response(DATA, raw=raw)
    stream = BlobStream(response, len(DATA), "blob", chunk=4096)
    pieces = _drain(stream)
    assert b"".join(pieces) == DATA
    assert [len(p) for p in pieces] == [4096, 4096, len(DATA) - 8192]
    assert stream.count == len(DATA)
    assert stream.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()
    assert response.reads == ([] if raw else [4096, 4096, len(DATA) - 8192])


def test_the_pieces_share_one_buffer_no_copy_per_piece() -> None:
    stream = BlobStream(_Response(DATA, raw=True), len(DATA), "blob", chunk=4096)
    views = list(stream)
    assert all(isinstance(v, memoryview) for v in views)
    assert len({id(v.obj) for v in views}) == 1


def test_a_source_that_ends_early_fails_at_once_with_what_arrived() -> None:
    stream = BlobStream(_Response(DATA[:5000], raw=True), len(DATA), "blob sha256:abc", chunk=4096)
    with pytest.raises(TransientError, match=r"blob sha256:abc: the source ended after 5000 of 10240 bytes"):
        _drain(stream)


def test_no_more_than_the_size_is_read_and_an_encoded_body_is_read_through_the_client() -> None:
    response = _Response(DATA + b"extra", raw=True, encoding="gzip")
    stream = BlobStream(response, len(DATA), "blob", chunk=1 << 20)
    assert b"".join(_drain(stream)) == DATA
    assert response.reads == [len(DATA)]


def test_an_empty_blob_is_no_piece() -> None:
    stream = BlobStream(_Response(b"", raw=True), 0, "blob")
    assert _drain(stream) == []
    assert stream.digest == "sha256:" + hashlib.sha256(b"").hexdigest()
