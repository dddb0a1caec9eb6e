"""attestation-agent stand-in: evidence for the other services (and the real tng) over ttrpc on a unix socket.

TEE detection as guest-components' ``attester::detect_tee_type``: a TDX guest has ``/dev/tdx_guest`` or the
configfs-tsm report interface; the lab cannot produce TDX quotes, so on such a machine it says so and exits.
Otherwise the real AA warns ``No TEE platform detected. Sample Attester will be used.`` and falls back to the sample
attester. The stand-in prints that same warning and falls back only when ``CAI_LAB_ATTESTER=sample`` (the stand-in
compose sets it); without it, it stops, so a stack outside the lab cannot pass sample evidence off as a TEE.

Sample evidence is the real ``SampleAttester``'s: ``{"svn": "1", "report_data": base64(report data)}``.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import threading
from pathlib import Path
from types import FrameType

from . import _env, _ttrpc
from ._aa_socket import Handler, serve_connection
from ._log import anyhow_debug, emit, tracing_line

TDX_GUEST_DEVICE = "/dev/tdx_guest"
TSM_REPORT_DIR = "/sys/kernel/config/tsm/report"
NO_TEE_WARNING = """No TEE platform detected. Sample Attester will be used.
         If you are expecting to collect evidence from inside a confidential guest,
         either your guest is not configured correctly, or your attestation client
         was not built with support for the platform.

         Verify that your guest is a confidential guest and that your client
         (such as kbs-client or attestation-agent) was built with the feature
         corresponding to your platform.

         Attestation will continue using the fallback sample attester."""
VERSION = "v1.0.0 (cai-tui lab stand-in)"


def detect_tee() -> str:
    """``tdx`` when this is a TDX guest (ioctl device or configfs-tsm), else ``none``."""
    tdx_dev = os.environ.get("CAI_LAB_TDX_GUEST_DEVICE", TDX_GUEST_DEVICE)
    tsm = Path(os.environ.get("CAI_LAB_TSM_REPORT_DIR", TSM_REPORT_DIR))
    if Path(tdx_dev).exists() or tsm.is_dir():
        return "tdx"
    return "none"


def sample_evidence(report_data: bytes) -> str:
    return json.dumps({"svn": "1", "report_data": base64.b64encode(report_data).decode("ascii")})


def _handle(tee: str) -> Handler:
    def handle(method: str, payload: bytes) -> _ttrpc.Response:
        if method == "GetTeeType":
            return _ttrpc.Response(payload=_ttrpc.field_bytes(1, tee.encode()))
        if method == "GetEvidence":
            try:
                runtime_data = _ttrpc.first_bytes(_ttrpc.parse(payload), 1)
            except _ttrpc.ProtocolError as exc:
                return _ttrpc.Response(_ttrpc.INVALID_ARGUMENT, f"bad GetEvidenceRequest: {exc}")
            emit(
                tracing_line(
                    "INFO", "attestation_agent", f"get evidence: tee={tee}, runtime data {len(runtime_data)} bytes"
                )
            )
            return _ttrpc.Response(payload=_ttrpc.field_bytes(1, sample_evidence(runtime_data).encode()))
        if method == "GetAdditionalEvidence":
            return _ttrpc.Response()  # no additional devices: an empty Evidence
        return _ttrpc.Response(_ttrpc.UNIMPLEMENTED, f"{method} method does not exist")

    return handle


def main(argv: list[str]) -> int:
    emit(
        tracing_line(
            "INFO",
            "ttrpc_aa",
            f"Welcome to Confidential Containers Attestation Agent (ttRPC version)!\n\nversion: {VERSION}\nrpc: ttrpc",
        )
    )
    if detect_tee() == "tdx":
        emit(
            "Error: "
            + anyhow_debug(
                [
                    "init AA",
                    "TDX Attester: the cai-tui lab stand-in cannot produce TDX quotes; on a TDX guest run the real "
                    "attestation-agent of the CAI image",
                ]
            )
        )
        return 1
    emit(tracing_line("WARN", "attester", NO_TEE_WARNING))
    if os.environ.get("CAI_LAB_ATTESTER", "").strip().lower() != "sample":
        emit(
            "Error: "
            + anyhow_debug(
                [
                    "start AA",
                    "no TEE platform detected and the sample attester fallback is disabled in the cai-tui lab "
                    "stand-in (set CAI_LAB_ATTESTER=sample to allow it)",
                ]
            )
        )
        return 1
    tee = "sample"
    sock_path = _env.aa_socket()
    try:
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        if sock_path.exists() or sock_path.is_symlink():
            sock_path.unlink()
    except OSError as exc:
        emit(
            "Error: "
            + anyhow_debug(["clean previous attestation socket file", f"{exc.strerror} (os error {exc.errno})"])
        )
        return 1
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(sock_path))
        server.listen(16)
    except OSError as exc:
        emit(
            "Error: "
            + anyhow_debug(["cannot bind attestation ttrpc service", f"{exc.strerror} (os error {exc.errno})"])
        )
        return 1
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        try:
            server.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    emit(tracing_line("INFO", "ttrpc_aa", f'Attestation ttRPC service listening on: "unix://{sock_path}"'))
    server.settimeout(0.5)
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except TimeoutError:
            continue
        except OSError:
            break
        threading.Thread(target=serve_connection, args=(conn, _handle(tee)), daemon=True).start()
    server.close()
    try:
        sock_path.unlink()
    except OSError:
        pass
    emit(tracing_line("INFO", "ttrpc_aa", "SIGTERM received, gracefully shutdown."))
    return 0
