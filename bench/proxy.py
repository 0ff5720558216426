"""A counting TCP proxy: what really crosses the wire to a registry, whoever the client is.

deployctl (urllib3) and crane (Go) are pointed at ``proxy.host`` instead of the registry; every byte
is relayed unchanged and counted per direction. A plain TCP relay keeps HTTP untouched: the registry
builds its upload ``Location`` URLs from the ``Host`` header, which already names the proxy.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType

BUFFER = 1024 * 1024


@dataclass(frozen=True)
class Traffic:
    up: int  # client -> registry (uploads, request headers)
    down: int  # registry -> client (downloads, response headers)

    @property
    def total(self) -> int:
        return self.up + self.down


class CountingProxy:
    """``with CountingProxy("127.0.0.1:5000") as proxy: ... proxy.traffic()``."""

    def __init__(self, upstream: str, *, delay: float = 0.0) -> None:
        """``delay``: seconds each chunk a client sends waits before it is relayed (a request's round trip to a
        distant endpoint, e.g. S3 from a runner: ~20 ms)."""
        self._delay = delay
        host, _, port = upstream.rpartition(":")
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._lock = threading.Lock()
        self._up = 0
        self._down = 0
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="counting-proxy", daemon=True)

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def traffic(self) -> Traffic:
        with self._lock:
            return Traffic(self._up, self._down)

    def reset(self) -> None:
        with self._lock:
            self._up = self._down = 0

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        with contextlib.suppress(OSError):
            self._listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()
        self._thread.join(timeout=5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self._upstream, timeout=30)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        buffer = bytearray(BUFFER)
        view = memoryview(buffer)
        try:
            while True:
                count = source.recv_into(buffer)
                if count == 0:
                    break
                if upward and self._delay:
                    time.sleep(self._delay)
                sink.sendall(view[:count])
                with self._lock:
                    if upward:
                        self._up += count
                    else:
                        self._down += count
        except OSError:
            pass
        finally:
            # Half-close: the other direction may still be draining a response.
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
            with contextlib.suppress(OSError):
                source.shutdown(socket.SHUT_RD)
