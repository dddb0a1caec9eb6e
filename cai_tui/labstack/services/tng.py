"""tng service: the real ``tng`` binary (tng-sdk wheel) as the server-side Trusted Network Gateway.

It builds its config from cai.env — an egress with ``attest`` = the AA socket (background check, the model the
documented client config verifies; ``CAI_LAB_TNG_MODEL=passport`` adds the Trustee's AS at ``${TRUSTEE_URL}/as/`` and
``policy_ids = [TRUSTEE_POLICY]`` for a passport) — and runs ``tng launch --config-content`` with it. Where
CAI captures MODEL_SERVICE_PORT with a ``netfilter`` egress, the lab uses a ``mapping`` egress from
127.0.0.1:CAI_LAB_TNG_PORT (required; the lab override sets it) to 127.0.0.1:MODEL_SERVICE_PORT — netfilter would
change the firewall of the machine the lab runs on (:data:`cai_tui.labstack.not_real.TNG_NOT_REAL`). Ports go into
the JSON as numbers when they look like one, else as strings, so the binary's own parser reports a bad value.

tng's output is passed through to stdout unchanged (the container log is tng's log). When tng says its services are
ready (in passport mode: after it got its passport from the AS), ``/run/tng.ready`` is written for the healthcheck; SIGTERM is passed on
and the exit code is tng's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from . import _env
from ._log import emit, tracing_line

SERVICE = "tng"
READY_MARK = "All services are ready"
BINARY_ENV = "CAI_LAB_TNG_BINARY"
PORT_ENV = "CAI_LAB_TNG_PORT"
MODEL_ENV = "CAI_LAB_TNG_MODEL"  # background_check (default) or passport
IMAGE_BINARY = "/usr/bin/tng"


def _number_or_string(value: str) -> Any:
    return int(value) if re.fullmatch(r"-?\d+", value) else value


def config(
    port: str, aa_sock: str, as_addr: str, policy: str, mapping_port: str, model: str = "background_check"
) -> dict[str, Any]:
    """The server egress: the lab's mapping from 127.0.0.1:``mapping_port`` to MODEL_SERVICE_PORT, attested.

    ``background_check`` (TNG's default): the client gets this TEE's evidence in the handshake and has the AS verify
    it — what the documented client config (``verify`` without ``model``) expects. ``passport``: this side gets a
    token from the AS first and the client only checks the token (the client needs ``"model": "passport"``)."""
    attest: dict[str, Any] = {"aa_addr": f"unix://{aa_sock}"}
    if model == "passport":
        attest = {"model": "passport", **attest, "as_addr": as_addr, "policy_ids": [policy]}
    mapping = {
        "in": {"host": "127.0.0.1", "port": _number_or_string(mapping_port)},
        "out": {"host": "127.0.0.1", "port": _number_or_string(port)},
    }
    return {"add_egress": [{"mapping": mapping, "attest": attest}]}


def find_binary() -> str | None:
    """``$CAI_LAB_TNG_BINARY``, the image's /usr/bin/tng, ``tng`` on PATH, or the one beside this interpreter."""
    for candidate in (
        os.environ.get(BINARY_ENV),
        IMAGE_BINARY,
        shutil.which("tng"),
        str(Path(sys.executable).with_name("tng")),
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def main(argv: list[str]) -> int:
    try:
        port = _env.require("MODEL_SERVICE_PORT", SERVICE)
        trustee = _env.require("TRUSTEE_URL", SERVICE)
        policy = _env.optional("TRUSTEE_POLICY") or "default"
    except _env.EnvProblem as exc:
        return _env.report(exc)
    mapping_port = _env.optional(PORT_ENV)
    if not mapping_port:
        emit(
            f"{SERVICE}: environment variable {PORT_ENV} is not set; the lab's tng listens on that loopback port (a "
            "mapping egress, where CAI uses netfilter): the lab's compose override sets it, so start the stack with "
            "docker-compose.lab.yml"
        )
        return _env.ENV_EXIT
    binary = find_binary()
    if binary is None:
        emit(
            tracing_line(
                "ERROR",
                "tng",
                f"the tng binary was not found ({BINARY_ENV}, {IMAGE_BINARY}, PATH): install the tng-sdk wheel "
                "(pip install 'cai-tui[tng]') and rebuild the labstack image",
            ),
            sys.stdout,
        )
        return 1
    as_addr = trustee.rstrip("/") + "/as/"
    text = json.dumps(
        config(
            port, str(_env.aa_socket()), as_addr, policy, mapping_port, _env.optional(MODEL_ENV) or "background_check"
        ),
        separators=(",", ":"),
    )
    ready = _env.run_dir() / "tng.ready"
    ready.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [binary, "launch", "--config-content", text],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        if proc.poll() is None:
            proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    assert proc.stdout is not None
    out = sys.stdout.buffer
    for line in proc.stdout:
        out.write(line)
        out.flush()
        if READY_MARK.encode() in line and not ready.exists():
            _env.write_atomic(ready, b"ready\n", 0o644)
    rc = proc.wait()
    ready.unlink(missing_ok=True)
    return rc
