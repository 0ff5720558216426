"""The sandbox registry's ECR front: a reverse proxy before a CNCF distribution registry that refuses
what ECR refuses.

ECR repositories are IMMUTABLE (terraform/modules/registry), but the CNCF registry accepts any re-push.
Everything is streamed through unchanged (blobs of hundreds of MB in ``CHUNK`` pieces, headers kept,
``Location`` pointing at the backend rewritten to the front), except a manifest PUT to a tag: the front
asks the emulated ECR (moto) for the repository's ``imageTagMutability`` and, when it is IMMUTABLE and
the tag exists, answers as ECR does (HTTP 400, ``TAG_INVALID``), even for identical bytes. Pushes by
digest, new tags, MUTABLE repositories and repositories moto does not know go through.

    python -m deployctl.sandbox.registry_front --backend 127.0.0.1:5000 --moto http://127.0.0.1:5001

It listens on ``--listen`` (default ``127.0.0.1:0``: the kernel picks a free port, so no race) and
writes the address it got to stderr.
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deployctl.sandbox.ecr_mutability import Mutability, MutabilityUnknownError, ecr_mutability, tag_invalid

log = logging.getLogger("deployctl.registry_front")

CHUNK = 1 << 20
MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")
# The headers of one hop (RFC 9110 7.6.1): never forwarded, the front frames each side itself.
HOP_BY_HOP = frozenset(
    ("connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "expect")
)
MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)
NO_BODY_STATUSES = frozenset((204, 304))
BACKEND_TIMEOUT = 300.0


class FrontServer(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog (5) drops connections when a client opens many at once (parallel blob pushes).
    request_queue_size = 128

    def __init__(self, listen: tuple[str, int], backend: str, mutability: Mutability | None) -> None:
        super().__init__(listen, FrontHandler)
        self.backend = backend
        self.mutability = mutability
        # Check-then-put of an immutable tag is one step, so two concurrent pushes cannot both create it.
        self.immutable_puts = threading.Lock()


class FrontHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive with the client; the backend gets one connection per request
    server: FrontServer
    answered = False  # whether this request's status line went out (an error after it can only close)

    def do_GET(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
        self._forward()

    def do_HEAD(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
        self._forward()

    def do_POST(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
        self._forward()

    def do_PUT(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
        match = MANIFEST_PATH.match(self.path.split("?", 1)[0])
        # A digest reference (sha256:...) always has a colon, a tag never does.
        if match is None or ":" in match["reference"] or self.server.mutability is None:
            self._forward()
            return
        name, tag = match["name"], match["reference"]
        try:
            immutable = self.server.mutability(name) == "IMMUTABLE"
        except MutabilityUnknownError as exc:
            self._refuse(503, json.dumps({"errors": [{"code": "UNAVAILABLE", "message": str(exc)}]}).encode())
            return
        if not immutable:
            self._forward()
            return
        with self.server.immutable_puts:
            if self._tag_exists(name, tag):
                log.warning("refused: %s:%s exists and the repository is IMMUTABLE", name, tag)
                self._refuse(400, tag_invalid(name, tag))
                return
            self._forward()

    def do_PATCH(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
        self._forward()

    def do_DELETE(self) -> None:  # noqa: N802 - http.server dispatches on do_<METHOD>
        self._forward()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        """Quiet: only refusals and errors are logged (a push is hundreds of requests)."""

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's signature
        log.warning("%s: %s", self.address_string(), format % args)

    # ----------------------------------------------------------------- forwarding

    def _forward(self) -> None:
        self.answered = False
        backend = http.client.HTTPConnection(self.server.backend, timeout=BACKEND_TIMEOUT)
        try:
            backend.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for key, value in self.headers.items():
                if key.lower() not in HOP_BY_HOP:
                    backend.putheader(key, value)
            chunked = self._chunked_request()
            if chunked:
                backend.putheader("Transfer-Encoding", "chunked")
            backend.endheaders()
            if chunked:
                for piece in self._chunked_body():
                    backend.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                backend.send(b"0\r\n\r\n")
            else:
                for piece in self._sized_body():
                    backend.send(piece)
            response = backend.getresponse()
            self._relay(response)
        except (OSError, http.client.HTTPException) as exc:
            log.warning("%s %s: backend %s: %s", self.command, self.path, self.server.backend, exc)
            self.close_connection = True
            if not self.answered:
                body = json.dumps({"errors": [{"code": "UNAVAILABLE", "message": f"registry backend: {exc}"}]})
                self._refuse(502, body.encode())
        finally:
            backend.close()

    def _chunked_request(self) -> bool:
        return "chunked" in self.headers.get("Transfer-Encoding", "").lower()

    def _sized_body(self) -> Iterator[bytes]:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            piece = self.rfile.read(min(CHUNK, remaining))
            if not piece:
                raise ConnectionError("the client closed the connection mid-body")
            remaining -= len(piece)
            yield piece

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(8192) not in (b"\r\n", b"\n", b""):
                    pass  # trailers: dropped
                return
            while size > 0:
                piece = self.rfile.read(min(CHUNK, size))
                if not piece:
                    raise ConnectionError("the client closed the connection mid-chunk")
                size -= len(piece)
                yield piece
            self.rfile.readline(8)  # the CRLF after the chunk

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.answered = True
        self.send_response_only(response.status, response.reason)
        has_body = self.command != "HEAD" and response.status not in NO_BODY_STATUSES and response.status >= 200
        sized = response.getheader("Content-Length") is not None
        for key, value in response.getheaders():
            lower = key.lower()
            if lower in HOP_BY_HOP:
                continue
            self.send_header(key, self._front_location(value) if lower == "location" else value)
        # Without a length the body is chunked, or (an HTTP/1.0 client) ends when the connection closes.
        chunked = has_body and not sized and self.request_version != "HTTP/1.0"
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        elif has_body and not sized:
            self.close_connection = True
        self.end_headers()
        if not has_body:
            return
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            count = response.readinto(buffer)
            if not count:
                break
            if chunked:
                self.wfile.write(b"%x\r\n" % count + bytes(view[:count]) + b"\r\n")
            else:
                self.wfile.write(view[:count])
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _front_location(self, value: str) -> str:
        """A ``Location`` naming the backend's host:port names the front instead (the client only
        reaches the registry through the front)."""
        for scheme in ("http://", "https://"):
            prefix = f"{scheme}{self.server.backend}"
            if value.startswith(prefix):
                host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
                return f"http://{host}{value[len(prefix) :]}"
        return value

    def _tag_exists(self, name: str, tag: str) -> bool:
        backend = http.client.HTTPConnection(self.server.backend, timeout=30)
        try:
            backend.request("HEAD", f"/v2/{name}/manifests/{tag}", headers={"Accept": MANIFEST_TYPES})
            return backend.getresponse().status == 200
        finally:
            backend.close()

    def _refuse(self, status: int, body: bytes) -> None:
        # The request body (a manifest, small) is read so the connection stays usable.
        for _ in self._chunked_body() if self._chunked_request() else self._sized_body():
            pass
        self.answered = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="registry_front", description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", required=True, help="host:port of the CNCF registry")
    parser.add_argument("--moto", help="the emulated ECR's URL (without it every repository is MUTABLE)")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on (port 0: any free port)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    host, _, port = args.listen.rpartition(":")
    server = FrontServer((host, int(port)), args.backend, ecr_mutability(args.moto) if args.moto else None)
    bound_host, bound_port = server.server_address[:2]
    log.info("registry front on %s:%s for %s (mutability from %s)", bound_host, bound_port, args.backend, args.moto)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
