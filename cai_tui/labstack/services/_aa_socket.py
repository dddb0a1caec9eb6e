"""The attestation-agent socket: a JSON-lines stand-in for AA's ttrpc ``GetTeeType``/``GetEvidence``.

Request: ``{"method": "get_tee_type"}`` or ``{"method": "get_evidence", "runtime_data": <base64>}``, one JSON object
per line. Answer: ``{"tee": "sample"}`` / ``{"tee": …, "evidence": "<evidence JSON text>"}``, or ``{"error": "…"}``.

Connection failures are described the way ttrpc (through nix) describes them: ``Nix error: ENOENT: No such file or
directory`` — from the real errno of the real ``connect``.
"""

from __future__ import annotations

import base64
import errno as errno_mod
import json
import os
import socket
from pathlib import Path
from typing import Any

CALL_TIMEOUT_S = 10.0
MAX_LINE = 1 << 20


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


def _call(sock_path: Path, request: dict[str, Any]) -> dict[str, Any]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(CALL_TIMEOUT_S)
    try:
        try:
            s.connect(str(sock_path))
        except OSError as exc:
            raise AaError(nix_error(exc), connect=True) from exc
        try:
            s.sendall((json.dumps(request) + "\n").encode("utf-8"))
            buf = b""
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > MAX_LINE:
                    raise AaError("ttrpc err: response too large", connect=False)
        except TimeoutError as exc:
            raise AaError('rpc status: Status { code: DEADLINE_EXCEEDED, message: "Timeout" }', connect=False) from exc
        except OSError as exc:
            raise AaError(nix_error(exc), connect=False) from exc
    finally:
        s.close()
    if not buf:
        raise AaError("ttrpc err: remote stream closed", connect=False)
    try:
        answer = json.loads(buf)
    except ValueError as exc:
        raise AaError(f"ttrpc err: bad answer: {exc}", connect=False) from exc
    if not isinstance(answer, dict):
        raise AaError("ttrpc err: bad answer", connect=False)
    if "error" in answer:
        raise AaError(f'rpc status: Status {{ code: INTERNAL, message: "{answer["error"]}" }}', connect=False)
    return answer


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
    tee = _call(sock_path, {"method": "get_tee_type"}).get("tee")
    if not isinstance(tee, str):
        raise AaError("failed to parse Tee type", connect=False)
    return tee


def get_evidence(sock_path: Path, runtime_data: bytes) -> tuple[str, str]:
    """(tee, evidence JSON text) for ``runtime_data`` (the report data the evidence binds)."""
    answer = _call(
        sock_path, {"method": "get_evidence", "runtime_data": base64.b64encode(runtime_data).decode("ascii")}
    )
    tee, evidence = answer.get("tee"), answer.get("evidence")
    if not isinstance(tee, str) or not isinstance(evidence, str):
        raise AaError("illegal evidence format", connect=False)
    return tee, evidence
