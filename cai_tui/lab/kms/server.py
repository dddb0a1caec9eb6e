"""The loopback KMS endpoint: HTTP glue around the authenticator, the actions and the secret store.

``KmsLab(...).start()`` binds 127.0.0.1; point the real SDK at it with
``Config(endpoint=lab.endpoint, protocol="http", ...)``. Every answer is JSON: the action's flat document
on success, ``{"RequestId","HostId","Code","Message","Recommend"}`` on failure, including for requests the
HTTP layer itself rejects (bad request line, bad Content-Length, unsupported method).
"""

from __future__ import annotations

import json
import logging
import re
import socket
import threading
import time
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.httpbase import LOOPBACK, LabHandler, LabHTTPServer
from cai_tui.lab.kms import errors
from cai_tui.lab.kms.actions import HANDLERS, SECRET_DATA_LIMIT, SECRET_NAME_RE, ActionContext, Params
from cai_tui.lab.kms.auth import ApiRequest, Authenticator
from cai_tui.lab.kms.credentials import KmsCredentials
from cai_tui.lab.kms.errors import KmsError
from cai_tui.lab.kms.secrets_store import CURRENT, SecretsStore, encode_value

log = logging.getLogger("cai_tui.lab.kms")

MAX_BODY = 1024 * 1024  # a SecretData of 30 KB is at most ~90 KB once form-encoded
MAX_QUERY_FIELDS = 200
_FORM = "application/x-www-form-urlencoded"
_LENGTH_RE = re.compile(r"[0-9]{1,19}")


class _KmsHTTPServer(LabHTTPServer):
    """LabHTTPServer that also tracks open connections, so stop() can end keep-alive ones."""

    def __init__(self, lab: KmsLab, port: int) -> None:
        super().__init__(_KmsHandler, port)
        self.lab = lab
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()

    def start(self) -> _KmsHTTPServer:
        # As LabHTTPServer.start, with a shorter poll so that stop() (shutdown) returns within ~20 ms.
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, name=f"lab-kms-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def track(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def untrack(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def stop(self) -> None:
        super().stop()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _KmsHandler(LabHandler):
    server: _KmsHTTPServer
    timeout = 30  # seconds a connection may sit idle or trickle a body before it is dropped
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's delayed ACK
    # (~40 ms per request on Linux loopback).
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    # --- methods -------------------------------------------------------------------------------

    def do_POST(self) -> None:
        self._serve()

    def do_GET(self) -> None:
        self._serve()

    def _refuse_method(self) -> None:
        self.close_connection = True  # the body, if any, is left unread
        self._send_error(errors.unsupported_method(self.command), errors.new_request_id())

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse_method

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.request_version == "HTTP/0.9":
            self.send_error(HTTPStatus.BAD_REQUEST, "HTTP/0.9 requests are not supported")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found by http.server itself (request line, headers, unknown method) answered as JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # the request line did not parse: answer with a status line anyway
            self.request_version = self.protocol_version
        if code == HTTPStatus.NOT_IMPLEMENTED:
            err = errors.unsupported_method(str(self.command)[:32])
        else:
            try:
                phrase = HTTPStatus(code).phrase
            except ValueError:
                phrase = "Error"
            err = KmsError(code, "MalformedRequest", f"{phrase}: {message or explain or ''}".strip(": "))
        try:
            self._send_error(err, errors.new_request_id())
        except OSError:
            pass

    # --- one request ---------------------------------------------------------------------------

    def _serve(self) -> None:
        lab = self.server.lab
        request_id = errors.new_request_id()
        started = time.monotonic()
        try:
            req = self._parse()
            doc = lab.handle(req)
        except KmsError as e:
            log.debug("KMS %s -> %s %s (%.3fs)", self.path[:80], e.status, e.code, time.monotonic() - started)
            self._send_error(e, request_id)
            return
        except (TimeoutError, ConnectionError):
            self.close_connection = True
            return
        except Exception:
            log.exception("lab KMS failed on a request")
            self.close_connection = True
            self._send_error(errors.internal_failure(), request_id)
            return
        body = json.dumps({"RequestId": request_id, **doc}).encode("utf-8")
        self.send_bytes(200, body, self._headers(request_id))

    def _parse(self) -> ApiRequest:
        target = self.path
        if not target.startswith("/"):
            self.close_connection = True
            raise errors.api_not_found(target[:64])
        path, _, query_string = target.partition("?")
        query_string = query_string.partition("#")[0]
        body = self._read_body()
        query = _parse_form(query_string, "query string")
        headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        form: list[tuple[str, str]] = []
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type == _FORM and body:
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise errors.malformed_request("the form body is not UTF-8") from None
            form = _parse_form(text, "form body")
        if path != "/":
            raise errors.api_not_found(path[:64])
        return ApiRequest(self.command, path, query, headers, body, form)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding") is not None:
            self.close_connection = True
            raise errors.malformed_request("Transfer-Encoding is not supported; send Content-Length")
        values = [v.strip() for v in self.headers.get_all("Content-Length") or []]
        if not values:
            return b""
        if len(set(values)) != 1 or not _LENGTH_RE.fullmatch(values[0]):
            self.close_connection = True
            raise errors.malformed_request(f"bad Content-Length {values[0][:32]!r}")
        n = int(values[0])
        if n > MAX_BODY:
            self.close_connection = True
            raise errors.body_too_large(MAX_BODY)
        data = self.rfile.read(n) if n else b""
        if len(data) < n:
            self.close_connection = True
            raise errors.malformed_request("the body is shorter than its Content-Length")
        return data

    # --- answers -------------------------------------------------------------------------------

    def _headers(self, request_id: str) -> dict[str, str]:
        hdrs = {"Content-Type": "application/json;charset=utf-8", "x-acs-request-id": request_id}
        if self.close_connection:
            hdrs["Connection"] = "close"
        return hdrs

    def _send_error(self, err: KmsError, request_id: str) -> None:
        body = errors.error_body(err, request_id, self.server.lab.host_id)
        self.send_bytes(err.status, body, self._headers(request_id))


def _parse_form(text: str, what: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(
            text, keep_blank_values=True, encoding="utf-8", errors="strict", max_num_fields=MAX_QUERY_FIELDS
        )
    except UnicodeDecodeError:
        raise errors.malformed_request(f"the {what} is not UTF-8 once percent-decoded") from None
    except ValueError:
        raise errors.malformed_request(f"the {what} has more than {MAX_QUERY_FIELDS} fields") from None


class KmsLab:
    """The lab KMS: secrets persisted under ``state_dir``, the keys of ``credentials``, switches of ``faults``.

    ``clock_skew_s`` moves the server clock (positive: the server runs ahead), which is how tests and the
    lab produce InvalidTimeStamp.Expired. ``get_secret_value`` and ``put_secret`` work without the HTTP
    listener (they only need the store), so the lab can seed secrets before ``start()``.
    """

    def __init__(
        self,
        state_dir: Path,
        credentials: KmsCredentials,
        faults: FaultSwitches,
        port: int = 0,
        region: str = "cn-lab",
        instance_id: str = "kst-lab00000000000000000",
    ) -> None:
        self.state_dir = Path(state_dir)
        self.credentials = credentials
        self.faults = faults
        self.region = region
        self.instance_id = instance_id
        self.clock_skew_s = 0.0
        self._port = port
        self._server: _KmsHTTPServer | None = None
        self._lifecycle = threading.Lock()
        self.store = SecretsStore(self.state_dir, clock=self.now)
        self._auth = Authenticator(
            credentials, self.now, lambda: self.faults.is_on("kms-bad-key"), implemented=list(HANDLERS)
        )

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> KmsLab:
        with self._lifecycle:
            if self._server is None:
                server = _KmsHTTPServer(self, self._port)
                server.start()
                self._port = server.port  # a later start() reuses the port, so the endpoint stays the same
                self._server = server
        return self

    def stop(self) -> None:
        with self._lifecycle:
            server, self._server = self._server, None
        if server is not None:
            server.stop()

    def __enter__(self) -> KmsLab:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        server = self._server
        if server is None:
            raise RuntimeError("the lab KMS is not started")
        return server.port

    @property
    def endpoint(self) -> str:
        """``127.0.0.1:PORT`` without a scheme, as ``Config(endpoint=...)`` wants it."""
        return f"{LOOPBACK}:{self.port}"

    @property
    def host_id(self) -> str:
        return f"kms.{self.region}.aliyuncs.com"

    def now(self) -> float:
        return time.time() + self.clock_skew_s

    # --- requests ------------------------------------------------------------------------------

    def handle(self, req: ApiRequest) -> dict[str, Any]:
        """Authenticate and run one request; the response document without RequestId, or KmsError."""
        auth = self._auth.authenticate(req)
        ctx = ActionContext(
            store=self.store,
            region=self.region,
            instance_id=self.instance_id,
            secrets_missing=self.faults.is_on("kms-secret-missing"),
        )
        return HANDLERS[auth.action](ctx, Params(req.params()))

    # --- in-process access ---------------------------------------------------------------------

    def get_secret_value(self, name: str) -> bytes | None:
        """The ACSCurrent value of a secret not pending deletion; None when absent or kms-secret-missing is on."""
        if self.faults.is_on("kms-secret-missing"):
            return None
        secret = self.store.find(name)
        if secret is None or secret.planned_delete is not None:
            return None
        version = secret.by_stage(CURRENT)
        return version.value_bytes() if version is not None else None

    def put_secret(self, name: str, value: bytes | str, description: str = "") -> None:
        """Seed a secret (text when ``value`` is str or UTF-8 bytes, else binary); see SecretsStore.seed."""
        if not SECRET_NAME_RE.fullmatch(name) or name.startswith("acs/"):
            raise ValueError(f"{name!r} is not a valid KMS secret name")
        data, _ = encode_value(value)
        if len(data.encode("utf-8")) > SECRET_DATA_LIMIT:
            raise ValueError(f"secret {name!r}: the value is larger than {SECRET_DATA_LIMIT} bytes")
        self.store.seed(name, value, description, dkms_instance_id=self.instance_id)
