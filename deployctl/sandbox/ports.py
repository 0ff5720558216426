"""Ports and probes of the lab's services: a free port, whether one is open, an HTTP(S) health probe, a log's tail."""

from __future__ import annotations

import http.client
import socket
import ssl
from pathlib import Path

ATTEMPT_HEADER = "--- deployctl lab: start attempt"


# The lab's health probes present the admin client certificate (the API server) or nothing.
ClientCert = tuple[Path, Path]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def ssl_context(ca: Path | None, client: ClientCert | None) -> ssl.SSLContext:
    # Without a CA: a health probe of a loopback service with a self-signed cert.
    context = ssl._create_unverified_context() if ca is None else ssl.create_default_context(cafile=str(ca))  # noqa: S323
    if client is not None:
        context.load_cert_chain(str(client[0]), str(client[1]))
    return context


def http_ok(port: int, path: str, *, tls: bool, ca: Path | None, client: ClientCert | None) -> bool:
    try:
        if tls:
            # controller-manager/scheduler serve self-signed certs; the API server's is from our CA.
            context = ssl_context(ca, client)
            context.check_hostname = False
            if ca is not None:
                context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                "127.0.0.1", port, context=context, timeout=2
            )
        else:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def tail(path: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a log (empty when it cannot be read)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def attempt_output(path: str) -> str:
    """What the latest start attempt wrote to the service's log (the log keeps every attempt)."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return text[text.rfind(ATTEMPT_HEADER) :] if ATTEMPT_HEADER in text else text
