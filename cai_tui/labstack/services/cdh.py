"""confidential-data-hub stand-in: ``get-resource`` of MODEL_KEY_ID from TRUSTEE_URL, written to /run/cai/model.key.

What runs is guest-components' path for a one-shot ``cdh-oneshot get-resource`` with the evidence coming from the
attestation-agent socket: get a token by an RCAR handshake (``kbs_protocol`` ``repeat_rcar_handshake``: 5 attempts,
``WARN … RCAR handshake failed: …, retry N...``), then ``GET /kbs/v0/resource/…`` with it (``token_client``: 401 →
new token, 404 → ``ResourceNotFound``, else ``KbsInternalError`` with the server's ``ErrorInformation``); the
one-shot retries ``--retry`` times (``Tried N times... failed to get resource: Get Resource failed.``) and then
panics with the whole error's ``Debug`` — exit code 101, as Rust's panic. The HTTP requests are real (KbsClient over
httpx, no proxies), so statuses, bodies and connection errors are the lab's.

Differences from upstream, kept small: the RCAR retry interval is ``CAI_LAB_RCAR_INTERVAL`` (default 0.5 s, upstream
1 s) and the one-shot retries ``CAI_LAB_CDH_RETRY`` times (default 1, upstream 3), so a failing stack fails within
seconds; the KBS protocol version sent is ``CAI_LAB_KBS_PROTOCOL_VERSION`` (default 0.1.0, the Trustee chart 1.0.0
that the seed installs).
"""

from __future__ import annotations

import argparse
import json
import time

import httpx

from ...clients.kbs import (
    KbsClient,
    KbsError,
    KbsUnreachable,
    attest_body,
    bound_runtime_data,
    parse_kbs_uri,
    runtime_data_digest,
    runtime_data_hash_algorithm,
)
from . import _env, _rust_http
from ._aa_socket import AaError, check_connect, get_evidence, get_tee_type
from ._lifecycle import stay_up
from ._log import RUST_PANIC_EXIT, add_secret, emit, error_information_debug, rust_debug_str, rust_panic, tracing_line

SERVICE = "confidential-data-hub"
RCAR_MAX_ATTEMPT = 5
KBS_GET_RESOURCE_MAX_ATTEMPT = 3
PANIC_AT = "confidential-data-hub/hub/src/bin/cdh-oneshot.rs:170:25"
HASH_ALGORITHMS = ["sha256", "sha384", "sha512"]
RCAR_TARGET = "kbs_protocol::client::rcar_client"
TOKEN_TARGET = "kbs_protocol::client::token_client"


class KbsProtocolError(Exception):
    """A ``kbs_protocol::Error``; ``str()`` is its ``{:?}`` (``Variant("…")``), ``display`` its Display."""

    def __init__(self, variant: str, payload: str | None, display: str) -> None:
        super().__init__(f"{variant}({rust_debug_str(payload)})" if payload is not None else variant)
        self.display = display


class Cdh:
    def __init__(self, trustee_url: str, resource_uri: str, *, timeout: float, interval: float, version: str) -> None:
        self.base = trustee_url.rstrip("/")
        self.uri = resource_uri
        self.interval = interval
        self.sock = _env.aa_socket()
        self.client = KbsClient(
            self.base, protocol_version=version, timeout=timeout, transport=httpx.HTTPTransport(retries=0)
        )
        self.has_token = False

    # -- the RCAR handshake (anyhow errors, rendered with {:#?} as kbs_protocol does) -----------------------

    def _rcar_once(self) -> None:
        """One ``rcar_handshake``; raises ``_Anyhow`` with the ``{:#?}`` text of what failed."""
        try:
            tee = get_tee_type(self.sock)
        except AaError as exc:
            raise _Anyhow(f'AAEvidenceProvider(\n    "call ttrpc failed: {exc}",\n)') from exc
        auth_url = f"{self.base}/kbs/v0/auth"
        if _rust_http.url_problem(auth_url):
            raise _Anyhow(_rust_http.debug(auth_url, ValueError(auth_url), pretty=True))
        try:
            self.client.auth(tee=tee, extra_params={"supported-hash-algorithms": HASH_ALGORITHMS})
        except KbsUnreachable as exc:
            raise _Anyhow(_rust_http.debug(exc.url or auth_url, exc.__cause__ or exc, pretty=True)) from exc
        except KbsError as exc:
            raise _Anyhow(rust_debug_str(_status_message(exc, "KBS request unauthorized, ErrorInformation"))) from exc
        assert self.client.nonce is not None
        nonce, version = self.client.nonce, self.client.protocol_version
        # The key the KBS of this version can encrypt to (one choice, in the client: RSA1_5 before 0.2.0, else EC).
        jwk = self.client.new_tee_key()
        # The report data binds what the KBS of this version rebuilds (RFC 8785 canonical JSON, SHA-384): from 0.4.0
        # {tee-pubkey, nonce, additional-evidence: ""}, before it {tee-pubkey, nonce}.
        runtime = bound_runtime_data(version, nonce, jwk)
        digest = runtime_data_digest(runtime, runtime_data_hash_algorithm(tee))
        try:
            tee, evidence_text = get_evidence(self.sock, digest)
            evidence = json.loads(evidence_text)
        except (AaError, ValueError) as exc:
            inner = f"call ttrpc failed: {exc}" if isinstance(exc, AaError) else f"illegal evidence format: {exc}"
            raise _Anyhow(
                "Error {\n"
                '    context: "get composite evidence failed",\n'
                f"    source: AAEvidenceProvider(\n        {rust_debug_str(inner)},\n    ),\n}}"
            ) from exc
        body = attest_body(version, nonce=nonce, tee_pubkey=jwk, evidence=evidence)
        attest_url = self.client.url("attest")
        try:
            resp = self.client._request("POST", "attest", json=body, headers=self.client._cookie_headers())
        except KbsUnreachable as exc:
            raise _Anyhow(_rust_http.debug(attest_url, exc.__cause__ or exc, pretty=True)) from exc
        if resp.status_code == 401:
            info = error_information_debug(resp.text, pretty=False) or rust_debug_str(resp.text)
            raise _Anyhow(rust_debug_str(f"KBS attest unauthorized, Error Info: {info}"))
        if resp.status_code != 200:
            raise _Anyhow(rust_debug_str(f"KBS Server Internal Failed, Response: {rust_debug_str(resp.text)}"))
        try:
            token = resp.json()["token"]
        except (ValueError, KeyError, TypeError):
            raise _Anyhow("reqwest::Error {\n    kind: Decode,\n}") from None
        self.client.token = str(token)
        add_secret(self.client.token)
        self.has_token = True

    def get_token(self) -> None:
        """``repeat_rcar_handshake``: up to 5 attempts; the last failure becomes ``RcarHandshake("Unable …")``."""
        attempt = 1
        while True:
            try:
                self._rcar_once()
                return
            except _Anyhow as exc:
                err = KbsProtocolError("RcarHandshake", str(exc), f"RCAR handshake failed: {exc}")
                if attempt >= RCAR_MAX_ATTEMPT:
                    final = (
                        f"Unable to get token. RCAR handshake retried {RCAR_MAX_ATTEMPT} times. "
                        f"Final attempt failed with: {err}"
                    )
                    raise KbsProtocolError("RcarHandshake", final, f"RCAR handshake failed: {final}") from exc
                emit(tracing_line("WARN", RCAR_TARGET, f"RCAR handshake failed: {err}, retry {attempt}..."))
                attempt += 1
                time.sleep(self.interval)

    # -- get_resource (token_client) -------------------------------------------------------------------------

    def get_resource(self) -> bytes:
        for _attempt in range(KBS_GET_RESOURCE_MAX_ATTEMPT):
            if not self.has_token:
                self.get_token()
            try:
                return self.client.get_resource(self.uri)
            except KbsUnreachable as exc:
                url = exc.url or self.client.url("resource")
                debug = _rust_http.debug(url, exc.__cause__ or exc, pretty=False)
                raise KbsProtocolError(
                    "HttpError", f"get failed: {debug}", f"http request failed: get failed: {debug}"
                ) from exc
            except KbsError as exc:
                if exc.status == 200:
                    raise KbsProtocolError(
                        "DecryptResponseFailed", str(exc), f"decrypt KBS response body failed: {exc}"
                    ) from exc
                info = error_information_debug(exc.body, pretty=True)
                if info is None:
                    msg = "error decoding response body"
                    raise KbsProtocolError(
                        "KbsResponseDeserializationFailed", msg, f"deserialize http response failed: {msg}"
                    ) from exc
                if exc.status == 401:
                    emit(
                        tracing_line(
                            "WARN",
                            TOKEN_TARGET,
                            f"Authenticating with KBS failed. Get a new token from the token provider: {info}",
                        )
                    )
                    self.has_token = False
                    continue
                if exc.status == 404:
                    text = f"KBS resource Not Found (Error 404): {info}"
                    raise KbsProtocolError("ResourceNotFound", text, f"KBS resource not found: {text}") from exc
                text = f"KBS Server Internal Failed, Response: {info}"
                raise KbsProtocolError("KbsInternalError", text, f"KBS internal error: {text}") from exc
        raise KbsProtocolError("UnAuthorized", None, "request unauthorized")


class _Anyhow(Exception):
    """An ``anyhow::Error`` inside ``rcar_handshake``; ``str()`` is its ``{:#?}``."""


def _status_message(exc: KbsError, unauthorized_prefix: str) -> str:
    if exc.status == 401:
        info = error_information_debug(exc.body, pretty=False) or rust_debug_str(exc.body)
        return f"{unauthorized_prefix}: {info}"
    return f"KBS Server Internal Failed, Response: {rust_debug_str(exc.body)}"


class _CdhError(Exception):
    """A ``confidential_data_hub::Error``: ``display`` for the warning, ``str()`` for the panic's ``{:?}``."""

    def __init__(self, debug: str, display: str) -> None:
        super().__init__(debug)
        self.display = display


RESOURCE_ID_ERROR_INFO = "invalid kbs resource uri, should be kbs://<addr-of-kbs>/<repo>/<type>/<tag>"


def resource_uri_error(uri: str) -> str:
    """What guest-components' ``ResourceUri::try_from(&str)`` answers for a URI it refuses (kbs_protocol's
    resource_uri.rs): not a URL, or not three path segments → RESOURCE_ID_ERROR_INFO; another scheme → "scheme must be
    kbs"."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    if not parts.scheme or not uri.startswith(f"{parts.scheme}:"):
        return RESOURCE_ID_ERROR_INFO  # url::Url::try_from: relative URL without a base
    if parts.scheme != "kbs":
        return "scheme must be kbs"
    return RESOURCE_ID_ERROR_INFO


def _kbs_client_error(text: str) -> str:
    return f"KbsClientError({rust_debug_str(text)})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="confidential-data-hub", add_help=True)
    parser.add_argument("operation", nargs="?", default="get-resource", choices=["get-resource"])
    parser.add_argument("--resource-uri", default=None)
    parser.add_argument("-r", "--retry", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        trustee = _env.require("TRUSTEE_URL", SERVICE)
        uri = args.resource_uri or _env.require("MODEL_KEY_ID", SERVICE)
    except _env.EnvProblem as exc:
        return _env.report(exc)
    retry = args.retry if args.retry is not None else int(_env.env_float("CAI_LAB_CDH_RETRY", 1))
    interval = _env.env_float("CAI_LAB_RCAR_INTERVAL", 0.5)
    timeout = _env.env_float("CAI_LAB_HTTP_TIMEOUT", 3.0)
    version = _env.optional("CAI_LAB_KBS_PROTOCOL_VERSION") or "0.1.0"
    emit(tracing_line("INFO", "cdh_oneshot", f'Using config: [kbc] name = "cc_kbc", url = "{trustee}"'))
    emit(
        tracing_line(
            "WARN", "kms::plugins::kbs::cc_kbc", "KBS_CERT get failed: NotPresent. Use no KBS public key certs."
        )
    )

    cdh: Cdh | None = None
    tried = 1
    while True:
        emit(tracing_line("INFO", "confidential_data_hub::hub", f"get resource called: {uri}"))
        try:
            if cdh is None:
                try:
                    check_connect(_env.aa_socket())
                except AaError as exc:
                    inner = f"AATokenProvider({rust_debug_str(f'ttrpc connect failed {exc}')})"
                    raise _CdhError(
                        f"KbsClient {{ source: {_kbs_client_error(f'create AA token provider failed: {inner}')} }}",
                        "kbs client initialization failed",
                    ) from exc
                cdh = Cdh(trustee, uri, timeout=timeout, interval=interval, version=version)
            try:
                parse_kbs_uri(uri)
            except ValueError as exc:
                raise _CdhError(
                    f"GetResource {{ source: {_kbs_client_error(f'illegal resource uri: {resource_uri_error(uri)}')} }}",
                    "Get Resource failed",
                ) from exc
            try:
                key = cdh.get_resource()
            except KbsProtocolError as exc:
                raise _CdhError(
                    f"GetResource {{ source: {_kbs_client_error(f'get resource failed: {exc}')} }}",
                    "Get Resource failed",
                ) from exc
            break
        except _CdhError as exc:
            if tried > retry:
                emit(rust_panic(PANIC_AT, f"failed to get resource, {exc}"))
                return RUST_PANIC_EXIT
            emit(tracing_line("WARN", "cdh_oneshot", f"Tried {tried} times... failed to get resource: {exc.display}."))
            tried += 1
    add_secret(key)
    path = _env.model_key()
    try:
        _env.write_atomic(path, key, 0o400)
    except OSError as exc:
        emit(rust_panic(PANIC_AT, f"write model key {path}: {exc.strerror} (os error {exc.errno})"))
        return RUST_PANIC_EXIT
    emit(
        tracing_line("INFO", "cdh_oneshot", f"resource {uri} fetched ({len(key)} bytes), written to {path} (mode 0400)")
    )
    return stay_up()
