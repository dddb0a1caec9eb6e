"""Fixtures for the lab OSS tests (real oss2 clients against a loopback OssLab)."""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import httpx
import oss2
import pytest

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.oss import OssCredentials, OssLab

OSS_LAB_REGION = "cn-lab"
OSS_LAB_BUCKET = "lab-bucket"


@dataclass(frozen=True)
class OssLabKeys:
    owner_id: str = "LTAIowner0000000001"
    owner_secret: str = "owner-secret-0001"
    owner_uid: str = "1234567890"
    user_id: str = "LTAIuser00000000001"
    user_secret: str = "user-secret-0001"
    user_uid: str = "2000000000000001"
    other_owner_id: str = "LTAIother000000001"
    other_owner_secret: str = "other-secret-0001"
    other_owner_uid: str = "9999999999"
    sts_id: str = "STS.tempkey00000001"
    sts_secret: str = "sts-secret-0001"
    sts_token: str = "CAIS-lab-token-valid"
    sts_expired_id: str = "STS.tempkey00000002"
    sts_expired_secret: str = "sts-secret-0002"
    sts_expired_token: str = "CAIS-lab-token-expired"


@pytest.fixture
def oss_lab_keys() -> OssLabKeys:
    return OssLabKeys()


@pytest.fixture
def oss_lab_credentials(oss_lab_keys: OssLabKeys) -> OssCredentials:
    k = oss_lab_keys
    creds = OssCredentials()
    creds.add_key(k.owner_id, k.owner_secret, "owner", k.owner_uid)
    creds.add_key(k.user_id, k.user_secret, "user", k.user_uid)
    creds.add_key(k.other_owner_id, k.other_owner_secret, "owner", k.other_owner_uid)
    creds.add_sts_token(k.sts_token, k.sts_id, k.sts_secret, time.time() + 3600)
    creds.add_sts_token(k.sts_expired_token, k.sts_expired_id, k.sts_expired_secret, time.time() - 60)
    return creds


@pytest.fixture
def oss_lab_faults() -> FaultSwitches:
    return FaultSwitches()


@pytest.fixture
def oss_lab_state(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def oss_lab(
    oss_lab_state: Path, oss_lab_credentials: OssCredentials, oss_lab_faults: FaultSwitches
) -> Iterator[OssLab]:
    lab = OssLab(oss_lab_state, oss_lab_credentials, oss_lab_faults, region=OSS_LAB_REGION)
    lab.create_bucket(OSS_LAB_BUCKET)
    lab.start()
    try:
        yield lab
    finally:
        lab.close()


OssLabBucketFactory = Callable[..., oss2.Bucket]


@pytest.fixture
def oss_lab_bucket_for(oss_lab: OssLab) -> OssLabBucketFactory:
    """``oss_lab_bucket_for(auth, bucket=OSS_LAB_BUCKET, timeout=10)`` → an oss2.Bucket on the lab endpoint."""

    def make(auth: object, bucket: str = OSS_LAB_BUCKET, timeout: float = 10) -> oss2.Bucket:
        return oss2.Bucket(auth, oss_lab.endpoint, bucket, region=OSS_LAB_REGION, connect_timeout=timeout)

    return make


@pytest.fixture
def oss_lab_bucket(oss_lab_bucket_for: OssLabBucketFactory, oss_lab_keys: OssLabKeys) -> oss2.Bucket:
    """The owner's bucket, V1 signatures."""
    return oss_lab_bucket_for(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret))


OssLabRaw = Callable[..., httpx.Response]


@pytest.fixture
def oss_lab_raw(oss_lab: OssLab, oss_lab_keys: OssLabKeys) -> OssLabRaw:
    """Send one request signed by a real oss2 auth object and get the raw answer (to look at the wire).

    ``oss_lab_raw(method, bucket, key="", params=None, headers=None, data=b"", auth=None, quote_key=True)``; the
    default auth is the owner's V1 key. The path is built as oss2 builds path-style URLs (``/`` in keys as ``%2F``)
    unless ``quote_key=False``, and sent verbatim with http.client (no dot-segment normalisation on the way).
    """

    def send(
        method: str,
        bucket: str,
        key: str = "",
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        data: bytes = b"",
        auth: object | None = None,
        quote_key: bool = True,
    ) -> httpx.Response:
        auth = auth or oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret)
        path_key = quote(key, safe="") if quote_key else key
        path = f"/{bucket}/{path_key}" if bucket else "/"
        req = oss2.http.Request(
            method,
            oss_lab.endpoint + path,
            data=data,
            params=dict(params or {}),
            headers=dict(headers or {}),
            region=OSS_LAB_REGION,
            product="oss",
        )
        auth._sign_request(req, bucket, key)  # type: ignore[attr-defined]
        hdrs = {k: v for k, v in req.headers.items() if v is not None}
        if req.params:
            path += "?" + urlencode(req.params)
        conn = http.client.HTTPConnection("127.0.0.1", oss_lab.port, timeout=10)
        try:
            conn.request(method, path, body=data or None, headers=hdrs)
            resp = conn.getresponse()
            return httpx.Response(resp.status, headers=resp.getheaders(), content=resp.read())
        finally:
            conn.close()

    return send
