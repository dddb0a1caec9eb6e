"""Fixtures and helpers for the lab KMS tests (imported by tests/lab/test_kms_*.py).

Every client here is the real ``alibabacloud_kms20160120.client.Client``; nothing of the SDK is mocked.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from alibabacloud_kms20160120.client import Client
from alibabacloud_tea_openapi import models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException
from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from darabonba.request import DaraRequest

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.kms import KmsCredentials, KmsLab

AK = "LTAI5tLabKey000000000001"
SK = "lab-secret-value-0001"
REGION = "cn-lab"
ERROR_KEYS = {"RequestId", "HostId", "Code", "Message", "Recommend"}

# (id, Config.signature_algorithm): the SDK's default ACS3 path and the legacy RPC path ('v2').
STYLES = [pytest.param(None, id="acs3"), pytest.param("v2", id="rpc")]

_PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


@dataclass
class KmsEnv:
    state_dir: Path
    credentials: KmsCredentials
    faults: FaultSwitches
    lab: KmsLab
    extra_labs: list[KmsLab] = field(default_factory=list)

    def client(
        self,
        *,
        ak: str = AK,
        secret: str = SK,
        token: str | None = None,
        algorithm: str | None = None,
        lab: KmsLab | None = None,
    ) -> Client:
        cfg = open_api_models.Config(
            access_key_id=ak,
            access_key_secret=secret,
            security_token=token,
            endpoint=(lab or self.lab).endpoint,
            protocol="http",
            region_id=REGION,
            connect_timeout=2000,
            read_timeout=5000,
        )
        if algorithm is not None:
            cfg.signature_algorithm = algorithm
        return Client(cfg)

    def new_lab(self, port: int = 0) -> KmsLab:
        """Another lab on the same state directory, credentials and faults (a restarted lab)."""
        lab = KmsLab(self.state_dir, self.credentials, self.faults, port=port, region=REGION)
        self.extra_labs.append(lab)
        return lab


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK honours HTTP(S)_PROXY; make sure every request goes straight to 127.0.0.1."""
    for var in _PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def kms_env(tmp_path: Path, loopback_only: None) -> Iterator[KmsEnv]:
    creds = KmsCredentials()
    creds.add_key(AK, SK)
    faults = FaultSwitches()
    state = tmp_path / "state"
    lab = KmsLab(state, creds, faults, region=REGION).start()
    env = KmsEnv(state, creds, faults, lab)
    try:
        yield env
    finally:
        lab.stop()
        for other in env.extra_labs:
            other.stop()


def expect_error(
    call: Callable[[], Any], code: str, status: int, exc_type: type[Exception] = ClientException
) -> ClientException | ServerException:
    """Run an SDK call that must fail exactly as the cloud fails it; return the exception."""
    with pytest.raises(exc_type) as info:
        call()
    err = info.value
    assert type(err) is exc_type, f"{type(err).__name__}: {err}"
    assert err.code == code, f"{err.code} ({err.message})"
    assert err.status_code == status
    assert err.request_id and err.request_id != "None"
    assert isinstance(err.data, dict) and set(err.data) >= ERROR_KEYS
    return err  # type: ignore[return-value]


# --- signing requests by hand with the SDK's own signer (for raw httpx tests) --------------------


def signed_acs3(
    port: int,
    action: str,
    query: dict[str, str],
    form: dict[str, str] | None = None,
    *,
    ak: str = AK,
    secret: str = SK,
    nonce: str | None = None,
    version: str = "2016-01-20",
) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of an ACS3-HMAC-SHA256 request signed by the SDK's Utils.get_authorization."""
    body = SdkUtils.to_form(form).encode("utf-8") if form else b""
    req = DaraRequest()
    req.method = "POST"
    req.pathname = "/"
    req.query = dict(query)
    req.headers = {
        "host": f"127.0.0.1:{port}",
        "x-acs-version": version,
        "x-acs-action": action,
        "x-acs-date": SdkUtils.get_timestamp(),
        "x-acs-signature-nonce": nonce or SdkUtils.get_nonce(),
        "accept": "application/json",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if form:
        req.headers["content-type"] = "application/x-www-form-urlencoded"
    req.headers["Authorization"] = SdkUtils.get_authorization(
        req, "ACS3-HMAC-SHA256", req.headers["x-acs-content-sha256"], ak, secret
    )
    url = f"http://127.0.0.1:{port}/" + (f"?{urlencode(query)}" if query else "")
    return url, dict(req.headers), body


def signed_rpc(
    port: int,
    action: str,
    query: dict[str, str],
    form: dict[str, str] | None = None,
    *,
    ak: str = AK,
    secret: str = SK,
) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of a legacy RPC request signed by the SDK's Utils.get_rpcsignature."""
    q = {
        "Action": action,
        "Format": "json",
        "Version": "2016-01-20",
        "Timestamp": SdkUtils.get_timestamp(),
        "SignatureNonce": SdkUtils.get_nonce(),
        **query,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": ak,
    }
    q["Signature"] = SdkUtils.get_rpcsignature({**q, **(form or {})}, "POST", secret)
    headers = {"host": f"127.0.0.1:{port}"}
    body = b""
    if form:
        body = urlencode(form).encode("utf-8")
        headers["content-type"] = "application/x-www-form-urlencoded"
    return f"http://127.0.0.1:{port}/?{urlencode(q)}", headers, body


def post(url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=5) as c:
        return c.post(url, headers=headers, content=body)


# --- raw sockets -----------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_exchange(port: int, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes, half-close, read until the server closes."""
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server may answer and close before taking everything (413)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks)


def parse_first_response(raw: bytes) -> RawResponse:
    """The first final (non-1xx) HTTP/1.1 response in ``raw``."""
    rest = raw
    while True:
        head, sep, rest = rest.partition(b"\r\n\r\n")
        assert sep, f"no complete HTTP response head in {raw[:200]!r}"
        lines = head.decode("iso-8859-1").split("\r\n")
        proto, status_text = lines[0].split(" ", 2)[:2]
        assert proto == "HTTP/1.1", lines[0]
        status = int(status_text)
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if 100 <= status < 200:
            continue
        n = int(headers.get("content-length", "0"))
        assert len(rest) >= n, "truncated body"
        return RawResponse(status, headers, rest[:n])
