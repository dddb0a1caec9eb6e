"""The attestation-agent socket: guest-components' ttrpc service ``attestation_agent.AttestationAgentService``
(``GetEvidence``, ``GetAdditionalEvidence``, ``GetTeeType``; attestation-agent.proto), spoken for real over the unix
socket — the real ``tng`` binary of the lab's tng service connects to it exactly as it does to the real AA.

Messages: ``GetEvidenceRequest {bytes RuntimeData = 1}`` → ``GetEvidenceResponse {bytes Evidence = 1}``;
``GetTeeTypeRequest {}`` → ``GetTeeTypeResponse {string tee = 1}``. Connection failures are described the way ttrpc
(through nix) describes them: ``Nix error: ENOENT: No such file or directory`` — from the real errno of ``connect``.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
from collections.abc import Callable
from pathlib import Path

from . import _ttrpc

SERVICE = "attestation_agent.AttestationAgentService"
CALL_TIMEOUT_S = 10.0


class AaError(Exception):
    """The AA could not be reached (``connect`` is True) or answered an error."""

    def __init__(self, message: str, *, connect: bool) -> None:
        super().__init__(message)
        self.connect = connect


def nix_error(exc: OSError) -> str:
    """``Nix error: ECONNREFUSED: Connection refused`` — ttrpc's ``Error::Nix`` Display of the real errno."""
    code = exc.errno or 0
    name = errno_mod.errorcode.get(code, f"UnknownErrno({code})")
    return f"Nix error: {name}: {exc.strerror or os.strerror(code)}"


def _call(sock_path: Path, method: str, payload: bytes) -> bytes:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CALL_TIMEOUT_S)
    try:
        try:
            s.connect(str(sock_path))
        except OSError as exc:
            raise AaError(nix_error(exc), connect=True) from exc
        request = _ttrpc.Request(SERVICE, method, payload, int(CALL_TIMEOUT_S * 1e9))
        try:
            _ttrpc.write_frame(s, 1, _ttrpc.TYPE_REQUEST, request.encode())
            stream, kind, data = _ttrpc.read_frame(s)
        except TimeoutError as exc:
            raise AaError('rpc status: Status { code: DEADLINE_EXCEEDED, message: "Timeout" }', connect=False) from exc
        except EOFError as exc:
            raise AaError("ttrpc err: remote stream closed", connect=False) from exc
        except _ttrpc.ProtocolError as exc:
            raise AaError(f"ttrpc err: {exc}", connect=False) from exc
        except OSError as exc:
            raise AaError(nix_error(exc), connect=False) from exc
    finally:
        s.close()
    if stream != 1 or kind != _ttrpc.TYPE_RESPONSE:
        raise AaError(f"ttrpc err: unexpected frame (stream {stream}, type {kind})", connect=False)
    try:
        response = _ttrpc.Response.decode(data)
    except _ttrpc.ProtocolError as exc:
        raise AaError(f"ttrpc err: bad response: {exc}", connect=False) from exc
    if response.code != _ttrpc.OK:
        raise AaError(response.status_text(), connect=False)
    return response.payload


def check_connect(sock_path: Path) -> None:
    """Connect and close (``ttrpc::Client::connect``); :class:`AaError` with ``connect=True`` when it fails."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CALL_TIMEOUT_S)
    try:
        s.connect(str(sock_path))
    except OSError as exc:
        raise AaError(nix_error(exc), connect=True) from exc
    finally:
        s.close()


def get_tee_type(sock_path: Path) -> str:
    fields = _ttrpc.parse(_call(sock_path, "GetTeeType", b""))
    return _ttrpc.first_bytes(fields, 1).decode("utf-8", "replace")


def get_evidence(sock_path: Path, runtime_data: bytes) -> tuple[str, str]:
    """(tee, evidence JSON text) for ``runtime_data`` (the report data the evidence binds)."""
    answer = _call(sock_path, "GetEvidence", _ttrpc.field_bytes(1, runtime_data))
    evidence = _ttrpc.first_bytes(_ttrpc.parse(answer), 1)
    try:
        text = evidence.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AaError("illegal evidence format", connect=False) from exc
    return get_tee_type(sock_path), text


# --- the server side (the attestation-agent stand-in) ------------------------------------------------------------------

Handler = Callable[[str, bytes], _ttrpc.Response]


def serve_connection(conn: socket.socket, handle: Handler) -> None:
    """Answer ttrpc requests on ``conn`` until the peer closes; ``handle(method, request payload)`` → response."""
    with conn:
        conn.settimeout(60)
        while True:
            try:
                stream, kind, data = _ttrpc.read_frame(conn)
            except (EOFError, OSError, _ttrpc.ProtocolError):
                return
            if kind != _ttrpc.TYPE_REQUEST:
                continue
            try:
                request = _ttrpc.Request.decode(data)
            except _ttrpc.ProtocolError as exc:
                response = _ttrpc.Response(_ttrpc.INVALID_ARGUMENT, f"bad request: {exc}")
            else:
                if request.service != SERVICE:
                    response = _ttrpc.Response(_ttrpc.NOT_FOUND, f"{request.service} service does not exist")
                else:
                    response = handle(request.method, request.payload)
            try:
                _ttrpc.write_frame(conn, stream, _ttrpc.TYPE_RESPONSE, response.encode())
            except OSError:
                return
