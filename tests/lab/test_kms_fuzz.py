"""Raw HTTP against the lab KMS: malformed requests get JSON errors, the server never dies or 500s,
and nothing is written outside the state directory."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from alibabacloud_kms20160120 import models as kms_models
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

try:  # tests/lab as a package or as a plain directory on sys.path
    from .conftest_kms import (
        AK,
        ERROR_KEYS,
        SK,
        KmsEnv,
        kms_env,
        loopback_only,
        parse_first_response,
        post,
        raw_exchange,
        signed_acs3,
        signed_rpc,
    )
except ImportError:
    from conftest_kms import (
        AK,
        ERROR_KEYS,
        SK,
        KmsEnv,
        kms_env,  # noqa: F401
        loopback_only,  # noqa: F401
        parse_first_response,
        post,
        raw_exchange,
        signed_acs3,
        signed_rpc,
    )

FUZZ = settings(
    max_examples=120,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def fuzz_env(kms_env: KmsEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KmsEnv]:
    """The lab with one secret, run from an empty working directory that must stay empty."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    kms_env.lab.put_secret("fuzz/known", "value")
    yield kms_env
    assert os.listdir(cwd) == []
    assert sorted(os.listdir(tmp_path)) == ["cwd", "state"]
    # only the state file; no stray temp files, no file named after a secret
    assert os.listdir(kms_env.state_dir) == ["kms-secrets.json"]
    # and the server still answers the real SDK
    got = kms_env.client().get_secret_value(kms_models.GetSecretValueRequest(secret_name="fuzz/known"))
    assert got.body.secret_data == "value"


def _assert_json_error(status: int, body: bytes) -> dict:
    assert 400 <= status < 500, (status, body[:300])
    doc = json.loads(body)
    assert set(doc) == ERROR_KEYS, doc
    assert all(isinstance(doc[k], str) and doc[k] for k in ERROR_KEYS)
    return doc


def _raw(env: KmsEnv, data: bytes) -> tuple[int, dict]:
    resp = parse_first_response(raw_exchange(env.lab.port, data))
    return resp.status, _assert_json_error(resp.status, resp.body)


# --- targeted cases --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\nabc", 413, "RequestEntityTooLarge"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\nabc", 400, "MalformedRequest"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5_0\r\n\r\nabc", 400, "MalformedRequest"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\nabc", 400, "MalformedRequest"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, "MalformedRequest"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\nshort", 400, "MalformedRequest"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
            400,
            "MalformedRequest",
        ),
        (b"POST /other HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 404, "InvalidAction.NotFound"),
        (b"POST http://evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n", 404, "InvalidAction.NotFound"),
        (b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", 403, "UnsupportedHTTPMethod"),
        (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 403, "UnsupportedHTTPMethod"),
        (b"BREW / HTTP/1.1\r\nHost: x\r\n\r\n", 403, "UnsupportedHTTPMethod"),
        (b"POST /?a=%ff%fe HTTP/1.1\r\nHost: x\r\n\r\n", 400, "MalformedRequest"),
        (
            b"POST /?" + b"&".join(b"k%d=v" % i for i in range(300)) + b" HTTP/1.1\r\nHost: x\r\n\r\n",
            400,
            "MalformedRequest",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: 2\r\n\r\n\xff\xfe",
            400,
            "MalformedRequest",
        ),
        (b"GARBAGE\r\n\r\n", 400, "MalformedRequest"),
        (b"GET /\r\n\r\n", 400, "MalformedRequest"),
        (b"POST / HTTP/9.9\r\n\r\n", 505, "MalformedRequest"),
        (b"POST / HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n", 431, "MalformedRequest"),
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 400, "MissingAccessKeyId"),
        (b"POST /?AccessKeyId=LTAI HTTP/1.1\r\nHost: x\r\n\r\n", 400, "MissingAction"),
        (b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic Zm9vOmJhcg==\r\n\r\n", 400, "IncompleteSignature"),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: ACS4-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=0"
            b"\r\n\r\n",
            400,
            "IncompleteSignature",
        ),
    ],
)
def test_malformed_requests_get_json_errors(fuzz_env: KmsEnv, request_bytes: bytes, status: int, code: str) -> None:
    resp = parse_first_response(raw_exchange(fuzz_env.lab.port, request_bytes))
    assert resp.status == status, resp.body
    if 400 <= status < 500:
        assert _assert_json_error(resp.status, resp.body)["Code"] == code
    else:
        assert json.loads(resp.body)["Code"] == code
    assert resp.headers["content-type"].startswith("application/json")


def test_head_gets_an_error_without_body(fuzz_env: KmsEnv) -> None:
    raw = raw_exchange(fuzz_env.lab.port, b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 403 ")
    assert rest == b""


def _acs3_header_cases(port: int) -> list[tuple[dict[str, str], str]]:
    url, good, _ = signed_acs3(port, "GetSecretValue", {"SecretName": "fuzz/known"})
    cases = []
    for name, value, code in [
        ("x-acs-date", "2025-13-01T00:00:00Z", "InvalidTimeStamp.Format"),
        ("x-acs-date", "yesterday", "InvalidTimeStamp.Format"),
        ("x-acs-date", "2001-01-01T00:00:00Z", "InvalidTimeStamp.Expired"),
        ("x-acs-version", "2099-01-01", "InvalidVersion"),
        ("x-acs-action", "DropEverything", "InvalidAction.NotFound"),
        ("x-acs-content-sha256", "0" * 64, "SignatureDoesNotMatch"),
        ("x-acs-signature-nonce", "x" * 300, "InvalidParameter"),
    ]:
        cases.append(({**good, name: value}, code))
    missing_date = {k: v for k, v in good.items() if k != "x-acs-date"}
    cases.append((missing_date, "IncompleteSignature"))
    unsigned = {**good, "x-acs-extra": "not signed"}
    cases.append((unsigned, "IncompleteSignature"))
    return [(dict(h, __url=url), code) for h, code in cases]


def test_acs3_header_tampering(fuzz_env: KmsEnv) -> None:
    for headers, code in _acs3_header_cases(fuzz_env.lab.port):
        url = headers.pop("__url")
        resp = post(url, headers, b"")
        assert _assert_json_error(resp.status_code, resp.content)["Code"] == code, headers


def test_replayed_nonce_is_refused(fuzz_env: KmsEnv) -> None:
    for sign in (signed_acs3, signed_rpc):
        url, headers, body = sign(fuzz_env.lab.port, "GetSecretValue", {"SecretName": "fuzz/known"})
        first = post(url, headers, body)
        assert first.status_code == 200 and first.json()["SecretData"] == "value"
        again = post(url, headers, body)
        assert _assert_json_error(again.status_code, again.content)["Code"] == "SignatureNonceUsed"


def test_tampered_rpc_query_is_refused(fuzz_env: KmsEnv) -> None:
    url, headers, body = signed_rpc(fuzz_env.lab.port, "GetSecretValue", {"SecretName": "fuzz/known"})
    resp = post(url.replace("fuzz%2Fknown", "fuzz%2Fother"), headers, body)
    assert _assert_json_error(resp.status_code, resp.content)["Code"] == "SignatureDoesNotMatch"
    # the form body is covered by the RPC signature too
    url, headers, body = signed_rpc(
        fuzz_env.lab.port, "PutSecretValue", {"SecretName": "fuzz/known", "VersionId": "v9"}, {"SecretData": "a"}
    )
    resp = post(url, headers, body.replace(b"a", b"b"))
    assert _assert_json_error(resp.status_code, resp.content)["Code"] == "SignatureDoesNotMatch"
    # and by ACS3, through the payload hash
    url, headers, body = signed_acs3(
        fuzz_env.lab.port, "PutSecretValue", {"SecretName": "fuzz/known", "VersionId": "v9"}, {"SecretData": "a"}
    )
    resp = post(url, headers, body.replace(b"a", b"b"))
    assert _assert_json_error(resp.status_code, resp.content)["Code"] == "SignatureDoesNotMatch"
    assert fuzz_env.lab.get_secret_value("fuzz/known") == b"value"


# --- generated garbage -----------------------------------------------------------------------------

_token = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.!#$%&'*+^`|~"),
    min_size=1,
    max_size=20,
)
_header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=80)
_target_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)
_auth_values = st.one_of(
    _header_value,
    st.builds(
        lambda alg, cred, sh, sig: f"{alg} Credential={cred},SignedHeaders={sh},Signature={sig}",
        st.sampled_from(["ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", "ACS3-RSA-SHA256", "ACS4-HMAC-SHA256", "", "acs3"]),
        st.sampled_from([AK, "", "LTAIunknown", "STS.x"]),
        st.sampled_from(
            ["host", "host;x-acs-date", "", ";;", "HOST;X-ACS-ACTION;x-acs-date;x-acs-signature-nonce;x-acs-version"]
        ),
        st.text(st.sampled_from("0123456789abcdef"), max_size=64),
    ),
)
_rpc_query = st.dictionaries(
    st.sampled_from(
        [
            "Action",
            "Version",
            "AccessKeyId",
            "Signature",
            "SignatureMethod",
            "SignatureVersion",
            "Timestamp",
            "SignatureNonce",
            "SecurityToken",
            "Format",
            "SecretName",
        ]
    ),
    st.sampled_from(["GetSecretValue", "2016-01-20", AK, "HMAC-SHA1", "1.0", "2026-01-01T00:00:00Z", "json", "x", ""])
    | st.text(st.characters(codec="utf-8"), max_size=20),
).map(urlencode)
_header_names = st.one_of(
    st.sampled_from(
        [
            "Content-Length",
            "Authorization",
            "Content-Type",
            "Transfer-Encoding",
            "Host",
            "x-acs-action",
            "x-acs-version",
            "x-acs-date",
            "x-acs-signature-nonce",
            "x-acs-content-sha256",
            "x-acs-security-token",
            "Expect",
            "Connection",
        ]
    ),
    _token,
)
_content_lengths = st.one_of(
    st.integers(-10, 10**13).map(str), st.sampled_from(["", " 3", "3 ", "0x10", "1e3", "+4", "٣"]), _header_value
)


@st.composite
def garbage_requests(draw) -> bytes:
    # mostly what the API accepts (POST /?query), so that the garbage reaches the deeper checks
    if draw(st.integers(0, 19)):
        method = draw(st.sampled_from(["POST"] * 12 + ["GET"] * 3 + ["PUT", "DELETE"]))
    else:
        method = draw(_token)
    target = draw(
        st.sampled_from(["/", "/?", "/?Action=GetSecretValue&Version=2016-01-20&AccessKeyId=" + AK])
        | st.builds(lambda q: "/?" + q, _target_text)
        | st.builds(lambda q: "/?" + q, _rpc_query)
        | st.builds(lambda p: "/" + p, _target_text)
    )
    lines = [f"{method} {target} HTTP/1.1", "Host: 127.0.0.1"]
    if draw(st.booleans()):
        lines.append(f"Authorization: {draw(_auth_values)}")
        acs = {"x-acs-action": "GetSecretValue", "x-acs-version": "2016-01-20", "x-acs-date": "2026-01-01T00:00:00Z"}
        lines += [f"{k}: {v}" for k, v in acs.items() if draw(st.booleans())]
    for name, value in draw(st.lists(st.tuples(_header_names, _header_value), max_size=6)):
        if name == "Authorization":
            value = draw(_auth_values)
        if name == "Content-Length":
            value = draw(_content_lengths)
        if name == "Expect":
            value = draw(st.sampled_from(["100-continue", value]))
        lines.append(f"{name}: {value}")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")
    return head + draw(st.binary(max_size=300))


@FUZZ
@given(data=garbage_requests())
def test_garbage_requests_get_errors_never_crash(fuzz_env: KmsEnv, data: bytes) -> None:
    raw = raw_exchange(fuzz_env.lab.port, data)
    resp = parse_first_response(raw)
    _assert_json_error(resp.status, resp.body)
    assert fuzz_env.lab._server is not None and fuzz_env.lab._server._thread.is_alive()


# --- well-signed requests with arbitrary parameters ------------------------------------------------

_values = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=40),
    st.sampled_from(["", "0", "-1", "101", "true", "TRUE", "maybe", "[]", "[{}]", "{}", "null", "../../etc/passwd"]),
    st.sampled_from(['[{"Key":"SecretName","Values":["fuzz/known"]}]', '[{"TagKey":"a","TagValue":"b"}]', '["Blue"]']),
    st.sampled_from(["ACSCurrent", "ACSPrevious", "text", "binary", "Generic", "Rds", "fuzz/known", "AAAA"]),
)
_param_names = st.sampled_from(
    [
        "SecretName",
        "SecretData",
        "SecretDataType",
        "VersionId",
        "VersionStage",
        "VersionStages",
        "Description",
        "Tags",
        "Filters",
        "PageNumber",
        "PageSize",
        "FetchTags",
        "ForceDeleteWithoutRecovery",
        "RecoveryWindowInDays",
        "DryRun",
        "DKMSInstanceId",
        "SecretType",
        "IncludeDeprecated",
        "Unknown",
    ]
)
_actions = st.sampled_from(
    [
        "CreateSecret",
        "GetSecretValue",
        "DescribeSecret",
        "ListSecrets",
        "PutSecretValue",
        "DeleteSecret",
        "RestoreSecret",
        "ListSecretVersionIds",
        "Encrypt",
    ]
)


@FUZZ
@given(
    action=_actions,
    query=st.dictionaries(_param_names, _values, max_size=6),
    form=st.dictionaries(st.sampled_from(["SecretData", "SecretName"]), _values, max_size=2),
    style=st.sampled_from(["acs3", "rpc"]),
)
def test_signed_requests_with_arbitrary_parameters(fuzz_env: KmsEnv, action, query, form, style) -> None:
    if action != "CreateSecret" and "SecretName" not in query and "SecretName" not in form:
        query["SecretName"] = "fuzz/known"
    sign = signed_acs3 if style == "acs3" else signed_rpc
    url, headers, body = sign(fuzz_env.lab.port, action, query, form, ak=AK, secret=SK)
    resp = post(url, headers, body)
    if resp.status_code == 200:
        doc = resp.json()
        assert doc["RequestId"] and "Code" not in doc
    else:
        code = _assert_json_error(resp.status_code, resp.content)["Code"]
        # the signature always verifies, whatever the parameters carry
        assert code not in ("SignatureDoesNotMatch", "IncompleteSignature", "InternalFailure"), resp.content
    if action not in ("DeleteSecret", "PutSecretValue"):
        # nothing else changes the value of an existing secret
        assert fuzz_env.lab.get_secret_value("fuzz/known") == b"value"
    fuzz_env.lab.put_secret("fuzz/known", "value")  # back to the starting point (cancels a deletion too)
