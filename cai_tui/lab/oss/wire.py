"""HTTP plumbing for the loopback OSS: the request handler, the streamed body reader and the answer senders.

Operations (in :mod:`.service`) get the handler of one request and answer through ``answer`` / ``start_answer`` /
``stream_file``; the handler turns every failure into an OSS error document (or, once the headers are out, into a
closed connection) and never lets an exception escape.
"""

from __future__ import annotations

import base64
import io
import logging
import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import parse_qsl, unquote_to_bytes, urlsplit

from ..httpbase import LabHandler, LabHTTPServer
from . import errors
from .auth import Headers, WireRequest
from .errors import OssError
from .xmlbody import error_document, http_date

if TYPE_CHECKING:
    from .server import OssLab

log = logging.getLogger("cai_tui.lab.oss")

CHUNK = 1024 * 1024
SEND_CHUNK = 256 * 1024
DRAIN_LIMIT = 256 * 1024 * 1024  # after an early error, read and drop at most this much of a body, then hang up


class BodyError(OssError):
    """The body's framing is broken: answer, then close the connection."""


class Body:
    """The request body, read incrementally whether framed by Content-Length or chunked transfer coding."""

    def __init__(self, rfile: io.BufferedIOBase, headers: Headers) -> None:
        self._rfile = rfile
        self.chunked = "chunked" in headers.get("transfer-encoding").lower()
        self.length: int | None = None
        self._left = 0
        self._chunk_left = 0
        self.done = False
        if not self.chunked:
            raw = headers.get("content-length").strip()
            if raw:
                if not (raw.isascii() and raw.isdigit()):
                    raise BodyError(400, "InvalidArgument", "The Content-Length header is invalid.", "0016-00000102")
                self.length = int(raw)
                self._left = self.length
            self.done = self._left == 0

    @property
    def declared(self) -> bool:
        """A length was declared (Content-Length) or the body is chunked."""
        return self.chunked or self.length is not None

    def _read_line(self) -> bytes:
        line = self._rfile.readline(1026)
        if not line:
            raise ConnectionError("client closed the connection inside a chunked body")
        if not line.endswith(b"\n"):
            raise BodyError(400, "InvalidRequest", "Malformed chunked transfer coding.", "0016-00000103")
        return line.strip()

    def read(self, n: int) -> bytes:
        """Up to ``n`` bytes; b'' at the end of the body."""
        if self.done or n <= 0:
            return b""
        if not self.chunked:
            data = self._rfile.read(min(n, self._left))
            if not data:
                raise ConnectionError("client closed the connection before sending the whole body")
            self._left -= len(data)
            self.done = self._left == 0
            return data
        if self._chunk_left == 0:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise BodyError(400, "InvalidRequest", "Malformed chunked transfer coding.", "0016-00000103") from None
            if size < 0:
                raise BodyError(400, "InvalidRequest", "Malformed chunked transfer coding.", "0016-00000103")
            if size == 0:
                for _ in range(64):  # trailers, up to the empty line
                    if self._read_line() == b"":
                        break
                else:
                    raise BodyError(400, "InvalidRequest", "Too many trailer lines.", "0016-00000103")
                self.done = True
                return b""
            self._chunk_left = size
        data = self._rfile.read(min(n, self._chunk_left))
        if not data:
            raise ConnectionError("client closed the connection inside a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0 and self._read_line() != b"":
            raise BodyError(400, "InvalidRequest", "Malformed chunked transfer coding.", "0016-00000103")
        return data

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        while True:
            data = self.read(size)
            if not data:
                return
            yield data

    def read_small(self, limit: int) -> bytes:
        """The whole body, refused (EntityTooLarge/InvalidArgument) when it is larger than ``limit``."""
        if self.length is not None and self.length > limit:
            raise errors.invalid_argument(
                f"The request body is too large (at most {limit} bytes here).", "Content-Length"
            )
        out = bytearray()
        for data in self.chunks(64 * 1024):
            out += data
            if len(out) > limit:
                raise BodyError(400, "InvalidArgument", f"The request body is too large (at most {limit} bytes here).")
        return bytes(out)

    def drain(self, limit: int) -> bool:
        """Read and drop the rest of the body; False when it is longer than ``limit`` (hang up instead)."""
        if self.done:
            return True
        if self.length is not None and not self.chunked and self._left > limit:
            return False
        seen = 0
        for data in self.chunks():
            seen += len(data)
            if seen > limit:
                return False
        return True


def new_request_id() -> str:
    return secrets.token_hex(12).upper()


class OssHTTPServer(LabHTTPServer):
    """A LabHTTPServer that knows its lab and can hang up on every open connection when it stops."""

    def __init__(self, lab: OssLab, port: int) -> None:
        self.lab = lab
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._all_closed = threading.Condition(self._conns_lock)
        self._serving = False
        super().__init__(OssHandler, port)

    def start(self) -> OssHTTPServer:
        self._serving = True  # shutdown() is safe from now on, even before the thread enters serve_forever
        super().start()
        return self

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        super().serve_forever(min(poll_interval, 0.02))  # stop() returns within one poll

    def process_request(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[no-untyped-def]
        with self._conns_lock:
            self._conns.discard(request)
            self._all_closed.notify_all()
        super().shutdown_request(request)

    def stop(self, wait: float = 5.0) -> None:
        if self._serving:
            self.shutdown()
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        with self._all_closed:
            self._all_closed.wait_for(lambda: not self._conns, timeout=wait)
        self.server_close()
        if self._thread is not None:
            self._thread.join(timeout=wait)


class OssHandler(LabHandler):
    server_version = "AliyunOSS"
    timeout = 120  # an idle keep-alive connection or a silent client frees its thread after this long
    disable_nagle_algorithm = True  # headers and a small body go out in separate writes: no 40 ms delayed-ACK stalls
    server: OssHTTPServer

    # --- http.server hooks ----------------------------------------------------------------------------------------

    def version_string(self) -> str:
        return "AliyunOSS"

    def date_time_string(self, timestamp: float | None = None) -> str:
        return http_date(self.server.lab.now() if timestamp is None else timestamp)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level failures detected by http.server (bad request line, too many headers, unknown method)."""
        names = {400: "InvalidRequest", 414: "InvalidURI", 431: "RequestHeaderFieldsTooLarge", 501: "NotImplemented"}
        if code == 501:
            err: OssError = errors.method_not_allowed(str(getattr(self, "command", "") or ""))
        else:
            err = OssError(code, names.get(code, "InvalidRequest"), message or "The request could not be understood.")
        self.close_connection = True
        if not hasattr(self, "request_id"):
            self.request_id = new_request_id()
        self._sent_headers = False
        try:
            self.send_oss_error(err)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # --- one exchange ---------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.request_id = new_request_id()
        self._sent_headers = False
        self.on_success: Callable[[], None] | None = None
        self.body: Body | None = None
        self.wire: WireRequest | None = None
        lab = self.server.lab
        try:
            try:
                headers = Headers(list(self.headers.items()))
                self.body = Body(self.rfile, headers)
                self.wire = self._parse_target(headers)
                lab.service.handle(self, self.wire)
            except OssError as e:
                if isinstance(e, BodyError):
                    self.close_connection = True
                if self._sent_headers:
                    self.close_connection = True
                else:
                    self.send_oss_error(e)
        except (ConnectionError, TimeoutError) as exc:
            log.debug("client connection ended: %s", exc)
            self.close_connection = True
        except Exception:
            log.exception("lab OSS failed on %s %s", self.command, self.path[:200])
            self.close_connection = True
            if not self._sent_headers:
                try:
                    self.send_oss_error(errors.internal_error())
                except OSError:
                    pass
        finally:
            body = self.body
            if body is not None and not body.done and not self.close_connection:
                try:
                    if not body.drain(DRAIN_LIMIT):
                        self.close_connection = True
                except (OSError, OssError, ValueError):
                    self.close_connection = True

    def _parse_target(self, headers: Headers) -> WireRequest:
        raw = self.path
        if raw.startswith(("http://", "https://")):
            parts = urlsplit(raw)
            raw = parts.path + ("?" + parts.query if parts.query else "")
        path, _, qs = raw.partition("?")
        if not path.startswith("/"):
            raise errors.invalid_uri()
        try:
            bucket_raw, slash, key_raw = path[1:].partition("/")
            bucket_text = unquote_to_bytes(bucket_raw.encode("latin-1")).decode("utf-8")
            key = unquote_to_bytes(key_raw.encode("latin-1")).decode("utf-8")
            query = dict(parse_qsl(qs, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=200))
        except (UnicodeError, ValueError):
            raise errors.invalid_uri() from None
        bucket: str | None = bucket_text
        if bucket_text == "" and not slash:
            bucket = None  # "/" → the service (ListBuckets)
        return WireRequest(self.command, bucket, key, query, headers)

    # --- answers ----------------------------------------------------------------------------------------------------

    @property
    def client_ip(self) -> str:
        return str(self.client_address[0])

    def host_id(self) -> str:
        headers = getattr(self, "headers", None)
        host = (headers.get("Host") if headers is not None else None) or f"127.0.0.1:{self.server.port}"
        wire = getattr(self, "wire", None)
        bucket = wire.bucket if wire is not None else None
        return f"{bucket}.{host}" if bucket else host

    def start_answer(self, status: int, headers: dict[str, str], length: int | None) -> None:
        if status < 400 and self.on_success is not None:
            # counted before the client can read the answer, so whoever holds a response sees its count
            self.on_success()
            self.on_success = None
        self.send_response(status)
        self.send_header("x-oss-request-id", self.request_id)
        for k, v in headers.items():
            self.send_header(k, v)
        if length is not None:
            self.send_header("Content-Length", str(length))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self._sent_headers = True

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        hdrs = dict(headers or {})
        if body and "Content-Type" not in hdrs:
            hdrs["Content-Type"] = "application/xml"
        self.start_answer(status, hdrs, len(body))
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_oss_error(self, err: OssError) -> None:
        doc = error_document(err, self.request_id, self.host_id())
        hdrs = {"Content-Type": "application/xml", **err.headers}
        if err.ec:
            hdrs["x-oss-ec"] = err.ec
        if self.command == "HEAD":
            hdrs["x-oss-err"] = base64.b64encode(doc).decode("ascii")
            self.start_answer(err.status, hdrs, 0)
        else:
            self.start_answer(err.status, hdrs, len(doc))
            self.wfile.write(doc)

    def stream_file(self, f: BinaryIO, start: int, length: int) -> None:
        """Send ``length`` bytes of ``f`` from ``start``; stops early (and hangs up) when the lab stops."""
        lab = self.server.lab
        f.seek(start)
        left = length
        while left > 0:
            if lab.stopping.is_set():
                self.close_connection = True
                return
            data = f.read(min(SEND_CHUNK, left))
            if not data:
                # the file is shorter than its record says: never send a short body silently
                self.close_connection = True
                return
            self.wfile.write(data)
            left -= len(data)
