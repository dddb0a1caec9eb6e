"""One loopback HTTP server that plays a whole Trustee deployment, and the faults that break it.

Paths:

- ``/kbs/v0/...`` — the KBS itself (upstream layout);
- ``/attestation``, ``/challenge``, ``/certificate``, ``/policy[/<id>]``, ``/.well-known/jwks.json``, ``/healthz`` and
  ``/as/...`` — the restful Attestation Service;
- ``/api/...`` — the Alibaba gateway (``/api/kbs/v0``, ``/api/as``, ``/api/attestation-service``,
  ``/api/services-health``);
- ``/<release>/...`` — the seed's ``TRUSTEE_URL`` mount (the ALB rewrites it onto the gateway's ``/api/...``);
- ``GET /lab/log`` — the server-side log lines (also :meth:`TrusteeLab.server_log`).

Faults are read per request: ``trustee-down`` closes the listener (connection refused) and reopens it on the same port
when switched off; ``trustee-slow`` answers after PARAM seconds; ``trustee-hang`` reads the request and never answers
until the fault is switched off, the client goes away or the server stops; the ``kbs-*`` and ``gateway-*`` faults act
inside the KBS and gateway.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.httpbase import LOOPBACK, LabHandler, LabHTTPServer, log
from cai_tui.lab.trustee.attestation_service import AttestationService
from cai_tui.lab.trustee.errors import Reply
from cai_tui.lab.trustee.gateway import Gateway
from cai_tui.lab.trustee.kbs import KbsService
from cai_tui.lab.trustee.settings import ServerLog, TrusteeSettings
from cai_tui.lab.trustee.store import KmsBackend, LocalStore, check_resource_path

_AS_ROOT_ROUTES = frozenset({"attestation", "challenge", "certificate", "policy", "healthz", "status", ".well-known"})
_POLL_S = 0.05


class _TrusteeHTTPServer(LabHTTPServer):
    """Tracks its connections so that closing the listener also drops kept-alive and hung ones."""

    def __init__(self, app: TrusteeLab, port: int) -> None:
        self.app = app
        self.closing = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(_TrusteeHandler, port=port)

    def process_request(self, request: Any, client_address: Any) -> None:
        """One daemon thread per connection, named after the lab port (so leaks are countable)."""
        with self._conns_lock:
            self._conns.add(request)
        t = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"{self.thread_prefix}-{client_address[1]}",
            daemon=True,
        )
        try:
            t.start()
        except RuntimeError:  # no thread to be had: drop this connection, keep serving
            self.shutdown_request(request)

    @property
    def thread_prefix(self) -> str:
        return f"lab-trustee-{self.port}-conn"

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _TrusteeHandler(LabHandler):
    server: _TrusteeHTTPServer
    server_version = "cai-tui-lab-trustee"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without TCP_NODELAY a kept-alive client waits for a delayed ACK.
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_GET

    def _client_gone(self) -> bool:
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _serve(self) -> None:
        app = self.server.app
        if self.server.closing.is_set() or app.faults.is_on("trustee-down"):
            self.close_connection = True
            return
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            self.send_bytes(411, b"chunked request bodies are not supported by the lab", {"Connection": "close"})
            return
        body = self.read_small_body()
        if body is None:
            self.close_connection = True
            return
        # trustee-hang: read, then wait without answering (bounded by the fault, the client and the server's life).
        while app.faults.is_on("trustee-hang"):
            if self.server.closing.is_set() or app.stopping.is_set() or self._client_gone():
                self.close_connection = True
                return
            app.stopping.wait(_POLL_S)
        if app.faults.is_on("trustee-slow"):
            delay = app.faults.param("trustee-slow") or 0.0
            if app.stopping.wait(max(0.0, float(delay))):
                self.close_connection = True
                return
        if self.server.closing.is_set():
            self.close_connection = True
            return
        try:
            reply = app.route(self.command, self.path, self.headers, body)
        except Exception:  # the lab never dies of a request
            log.exception("lab trustee: unhandled error for %s %s", self.command, self.path)
            app.log.error("lab", f"internal error handling {self.command} {self.path[:200]}")
            reply = Reply.text(500, "internal error")
        self.send_bytes(reply.status, reply.body, reply.headers)


class TrusteeLab:
    """The lab Trustee (KBS + AS + Alibaba gateway) on ``127.0.0.1``; see the module docstring."""

    def __init__(
        self,
        state_dir: Path,
        admin_public_key_pem: bytes,
        faults: FaultSwitches,
        settings: TrusteeSettings | None = None,
        kms_lookup: Callable[[str], bytes | None] | None = None,
        port: int = 0,
    ) -> None:
        self.settings = settings or TrusteeSettings()
        self.settings.validate()
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.faults = faults
        self.log = ServerLog()
        self.stopping = threading.Event()
        self.attestation = AttestationService(self.settings, self.log)
        self.store = LocalStore(self.state_dir / "kbs-repository")
        self.kbs = KbsService(
            self.settings,
            self.log,
            faults,
            self.attestation,
            self.store,
            KmsBackend(kms_lookup),
            admin_public_key_pem,
        )
        self.gateway = Gateway(self.kbs, self.attestation, faults, self.log)
        self._port = int(port)
        self._server: _TrusteeHTTPServer | None = None
        self._lock = threading.RLock()
        self._started = False
        ref = weakref.ref(self)

        def on_fault(name: str, on: bool) -> None:
            lab = ref()
            if lab is not None:
                lab._on_fault(name, on)

        faults.subscribe(on_fault)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> TrusteeLab:
        with self._lock:
            if self._started:
                return self
            self.stopping.clear()
            self._started = True
            if self.faults.is_on("trustee-down"):
                if self._port == 0:
                    self._port = _free_port()
                self.log.info("lab", f"trustee-down is on: port {self._port} stays closed")
            else:
                self._open()
        return self

    def stop(self) -> None:
        with self._lock:
            if not self._started:
                return
            self._started = False
            self.stopping.set()
            self._close()

    def __enter__(self) -> TrusteeLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self._port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.settings.release}"

    @property
    def listening(self) -> bool:
        return self._server is not None

    def _open(self) -> None:
        deadline = time.monotonic() + 3.0
        while True:
            try:
                server = _TrusteeHTTPServer(self, self._port)
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or self._port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self._port = server.port
        server.start()
        self._server = server
        self.log.info("lab", f"listening on {self.base_url}")

    def _close(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.closing.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        self.log.info("lab", f"listener on port {self._port} closed")

    def _on_fault(self, name: str, on: bool) -> None:
        if name != "trustee-down":
            return
        with self._lock:
            if not self._started:
                return
            if on:
                self._close()
            elif self._server is None:
                self._open()

    # -- in-process API ---------------------------------------------------------------------------

    def set_resource(self, repo: str, type_: str, tag: str, data: bytes) -> None:
        """Seed a resource in the local store (whatever the backend setting)."""
        check_resource_path(repo, type_, tag)
        self.store.write(repo, type_, tag, bytes(data))

    def server_log(self) -> list[str]:
        return self.log.lines()

    # -- routing ----------------------------------------------------------------------------------

    def route(self, method: str, target: str, headers: Any, body: bytes) -> Reply:
        if not target.startswith("/"):
            return Reply.text(400, "request target must be a path")
        path, _, query = target.partition("?")
        segments = path.split("/")[1:]
        head = segments[0] if segments else ""
        if head == "kbs" and len(segments) >= 2 and segments[1] == "v0":
            return self.kbs.handle(method, segments[2:], query, headers, body)
        if head == "api":
            return self.gateway.handle(method, segments[1:], query, headers, body)
        if head == self.settings.release:
            return self.gateway.handle(method, segments[1:], query, headers, body)
        if head == "lab" and segments[1:] == ["log"] and method == "GET":
            return Reply.json(200, {"lines": self.server_log()})
        if head == "as":
            return self.attestation.handle(method, segments[1:], body)
        if head in _AS_ROOT_ROUTES:
            return self.attestation.handle(method, segments, body)
        return Reply(404)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
