"""A small threaded HTTP/1.1 server base shared by the lab services.

Standard library only: ``ThreadingHTTPServer`` handles each connection on its own thread, which is
what a fault like ``trustee-hang`` needs (one hung request must not block the others), and request
bodies are read incrementally so a multi-GB upload never sits in memory.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

log = logging.getLogger("cai_tui.lab")

LOOPBACK = "127.0.0.1"


ACCEPT_TIMEOUT_S = 1.0


class LabHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0, host: str = LOOPBACK) -> None:
        if host not in (LOOPBACK, "localhost") and not host.startswith("127."):
            raise ValueError(f"lab servers bind loopback only, not {host!r}")
        super().__init__((host, port), handler)
        self._thread: threading.Thread | None = None

    def server_activate(self) -> None:
        super().server_activate()
        # serve_forever() accepts once select() says the socket is readable; a connection aborted in between leaves
        # nothing to accept, and a blocking accept() would hang the server thread (and shutdown() with it). With a
        # timeout that becomes an OSError, which socketserver ignores; accepted sockets stay blocking.
        self.socket.settimeout(ACCEPT_TIMEOUT_S)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> LabHTTPServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._thread.name = f"lab-{self.RequestHandlerClass.__name__}-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def handle_error(self, request: socket.socket | tuple[bytes, socket.socket], client_address) -> None:
        # A client that hangs up mid-request is normal for a test bed; anything else is logged, never fatal.
        log.debug("lab request from %s ended with an error", client_address, exc_info=True)


class LabHandler(BaseHTTPRequestHandler):
    """Request handler with bounded body reading, one send helper, and no stderr chatter."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle on, the body waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "cai-tui-lab"
    sys_version = ""
    max_small_body: ClassVar[int] = 16 * 1024 * 1024

    def log_message(self, format: str, *args) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def content_length(self) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None:
            return 0
        try:
            n = int(raw)
        except ValueError:
            return -1
        return n

    def read_small_body(self) -> bytes | None:
        """The whole body when it is small enough; None (after a 413) when not, or when the length is bad."""
        n = self.content_length
        if n < 0:
            self.send_bytes(400, b"bad Content-Length", {"Content-Type": "text/plain"})
            return None
        if n > self.max_small_body:
            self.send_bytes(413, b"request body too large", {"Content-Type": "text/plain"})
            return None
        return self.rfile.read(n) if n else b""

    def iter_body(self, chunk: int = 1024 * 1024):
        """Yield the request body in chunks without holding it in memory."""
        left = self.content_length
        while left > 0:
            data = self.rfile.read(min(chunk, left))
            if not data:
                raise ConnectionError("client closed the connection before sending the whole body")
            left -= len(data)
            yield data

    def send_bytes(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        hdrs = dict(headers or {})
        if self.command == "HEAD":
            hdrs.setdefault("Content-Length", hdrs.get("Content-Length", str(len(body))))
        else:
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
