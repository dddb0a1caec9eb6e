"""tng stand-in: the server-side Trusted Network Gateway in the passport model.

It builds its config from cai.env as CAI would (an egress that captures MODEL_SERVICE_PORT through netfilter, with
``attest`` = the AA socket, the Trustee's AS at ``${TRUSTEE_URL}/as/`` and ``policy_ids = [TRUSTEE_POLICY]``) and
loads it the way TNG does (serde: a port that is not a u16 fails with ``Failed to load config`` and serde's own
message), then gets a passport: ``POST {as}/challenge``, evidence from the attestation agent, ``POST
{as}/attestation`` (rats-cert's restful converter, api 1.6.0). Errors are TNG's (rats-cert ``errors.rs``) with the
real HTTP status and body or the real connection error, printed as TNG prints a fatal error
(``tracing::error!(?error)``, exit 1). TNG logs on stdout. On success it writes ``/run/tng.ready`` and stays up; it
does not bind MODEL_SERVICE_PORT (netfilter mode redirects it, the inference server owns the port).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import sys
from typing import Any

import httpx

from . import _env, _rust_http
from ._aa_socket import AaError, check_connect, get_evidence, get_tee_type
from ._lifecycle import stay_up
from ._log import add_secret, anyhow_debug, emit, tracing_line

SERVICE = "tng"
VERSION = "1.0.3"


class TngFailure(Exception):
    def __init__(self, chain: list[str]) -> None:
        super().__init__(chain[0])
        self.chain = chain


def log(level: str, message: str) -> None:
    emit(tracing_line(level, "tng", message), sys.stdout)


def config_text(port: str, aa_sock: str, as_addr: str, policy: str) -> str:
    """The config CAI generates; the port goes in as a number when it looks like one, else as a string."""
    port_json = port if re.fullmatch(r"-?\d+", port) else json.dumps(port)
    return (
        '{"add_egress":[{"netfilter":{"capture_dst":{"port":' + port_json + '}},'
        '"attest":{"model":"passport","aa_addr":' + json.dumps(f"unix://{aa_sock}") + ","
        '"as_addr":' + json.dumps(as_addr) + ',"policy_ids":' + json.dumps([policy]) + "}}]}"
    )  # fmt: skip


def load_config(text: str) -> dict[str, Any]:
    """Parse as serde would for ``port: u16``; serde's message (with line and column) on failure."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TngFailure(["Failed to load config", f"{exc.msg} at line {exc.lineno} column {exc.colno}"]) from exc
    port = doc["add_egress"][0]["netfilter"]["capture_dst"]["port"]
    m = re.search(r'"port":(-?\d+|"(?:[^"\\]|\\.)*")', text)
    column = m.end() if m else len(text)
    if isinstance(port, str):
        raise TngFailure(
            [
                "Failed to load config",
                f"invalid type: string {json.dumps(port)}, expected u16 at line 1 column {column}",
            ]
        )
    if not isinstance(port, int) or not 0 <= port <= 65535:
        raise TngFailure(
            ["Failed to load config", f"invalid value: integer `{port}`, expected u16 at line 1 column {column}"]
        )
    return dict(doc)


def passport(as_addr: str, policy: str, timeout: float) -> str:
    """A token from the AS for this TEE's evidence (rats-cert CocoRestfulConverter)."""
    base = as_addr.rstrip("/")
    sock = _env.aa_socket()
    try:
        check_connect(sock)
    except AaError as exc:
        raise TngFailure(["Failed to connect to Attestation Agent ttrpc endpoint", str(exc)]) from exc
    with httpx.Client(
        timeout=timeout, transport=httpx.HTTPTransport(retries=0), headers={"User-Agent": f"rats-rs/{VERSION}"}
    ) as http:
        url = f"{base}/challenge"
        if _rust_http.url_problem(url):
            raise TngFailure(
                [
                    "Failed to send /challenge HTTP request to AS (api_version: V1_6_0)",
                    *_rust_http.display_chain(url, ValueError(url)),
                ]
            )
        try:
            resp = http.post(url, json={})
        except httpx.HTTPError as exc:
            raise TngFailure(
                [
                    "Failed to send /challenge HTTP request to AS (api_version: V1_6_0)",
                    *_rust_http.display_chain(url, exc),
                ]
            ) from exc
        if resp.status_code != 200:
            raise TngFailure(
                [
                    f"Attestation service /challenge returned HTTP error (api_version: V1_6_0): status={resp.status_code}, response={resp.text}"
                ]
            )
        try:
            nonce = resp.json()["extra-params"]["jwt"]
        except (ValueError, KeyError, TypeError) as exc:
            raise TngFailure(["Failed to parse challenge response", str(exc)]) from exc
        runtime = {"challenge_token": nonce}
        runtime_text = json.dumps(runtime, separators=(",", ":"))
        try:
            tee = get_tee_type(sock)
        except AaError as exc:
            raise TngFailure(["Failed to get TEE type from Attestation Agent", str(exc)]) from exc
        try:
            tee, evidence = get_evidence(sock, hashlib.sha384(runtime_text.encode()).digest())
        except AaError as exc:
            raise TngFailure(["Failed to get evidence from Attestation Agent", str(exc)]) from exc
        body = {
            "verification_requests": [
                {
                    "tee": tee,
                    "evidence": base64.urlsafe_b64encode(evidence.encode()).decode().rstrip("="),
                    "runtime_data": {"structured": runtime},
                    "init_data": None,
                    "runtime_data_hash_algorithm": "sha384",
                }
            ],
            "policy_ids": [policy],
        }
        url = f"{base}/attestation"
        try:
            resp = http.post(url, json=body)
        except httpx.HTTPError as exc:
            raise TngFailure(
                [
                    "Failed to send /attestation HTTP request to AS (api_version: V1_6_0)",
                    *_rust_http.display_chain(url, exc),
                ]
            ) from exc
        if resp.status_code != 200:
            raise TngFailure(
                [
                    f"Attestation service /attestation returned HTTP error (api_version: V1_6_0): status={resp.status_code}, response={resp.text}"
                ]
            )
        token = resp.text.strip()
    if token.count(".") != 2:
        raise TngFailure(["Failed to parse CoCo AS token", "not a JWT"])
    _check_ear(token)
    return token


def _check_ear(token: str) -> None:
    """A passport whose EAR status is not affirming would be refused by every verifier: TNG says so up front."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        status = claims["submods"]["cpu0"]["ear.status"]
    except (ValueError, KeyError, TypeError, IndexError):
        return
    if status != "affirming":
        pid = claims["submods"]["cpu0"].get("ear.appraisal-policy-id", "?")
        raise TngFailure([f"EAR status is not affirming: got {status} for {pid}"])


def main(argv: list[str]) -> int:
    try:
        port = _env.require("MODEL_SERVICE_PORT", SERVICE)
        trustee = _env.require("TRUSTEE_URL", SERVICE)
        policy = _env.optional("TRUSTEE_POLICY") or "default"
    except _env.EnvProblem as exc:
        return _env.report(exc)
    log("INFO", f"Welcome to TNG (Trusted Network Gateway) version: {VERSION}")
    as_addr = trustee.rstrip("/") + "/as/"
    text = config_text(port, str(_env.aa_socket()), as_addr, policy)
    try:
        config = load_config(text)
        log("INFO", "Starting tng instance now")
        egress = config["add_egress"][0]
        log(
            "INFO",
            f"Add egress: netfilter capture_dst port {egress['netfilter']['capture_dst']['port']}, attest (passport) as_addr {as_addr}",
        )
        token = passport(as_addr, policy, _env.env_float("CAI_LAB_HTTP_TIMEOUT", 3.0))
    except TngFailure as exc:
        emit(tracing_line("ERROR", "tng", "error=" + anyhow_debug(exc.chain)), sys.stdout)
        return 1
    add_secret(token)
    ready = _env.run_dir() / "tng.ready"
    _env.write_atomic(ready, b"ready\n", 0o644)
    log("INFO", "Got attestation token (passport) from the attestation service; egress ready")
    log("INFO", "TNG is ready now")
    return stay_up()
