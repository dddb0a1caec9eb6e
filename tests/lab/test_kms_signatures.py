"""The server's own signature code against the SDK's signer as the oracle (no HTTP)."""

from __future__ import annotations

import hashlib

import pytest
from alibabacloud_tea_openapi.utils import Utils as SdkUtils
from darabonba.request import DaraRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cai_tui.lab.kms import signatures
from cai_tui.lab.kms.signatures import SignatureFormatError, parse_acs3_authorization

SETTINGS = settings(
    max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
# Keys as the SDK's models spell them (and RPC's common ones); values: any text the wire can carry.
keys = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_"), min_size=1, max_size=12
)
values = st.text(st.characters(codec="utf-8"), max_size=40)
params = st.dictionaries(keys, values, max_size=6)
secrets = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=30)


def _sdk_acs3(algorithm: str, query: dict[str, str], headers: dict[str, str], body: bytes, secret: str) -> str:
    req = DaraRequest()
    req.method = "POST"
    req.pathname = "/"
    req.query = dict(query)
    req.headers = dict(headers)
    payload = SdkUtils.hash(body, algorithm).hex()
    return SdkUtils.get_authorization(req, algorithm, payload, "LTAIkey", secret)


def _server_acs3(authorization: str, query: dict[str, str], headers: dict[str, str], body: bytes, secret: str):
    auth = parse_acs3_authorization(authorization)
    lowered: dict[str, list[str]] = {}
    for k, v in headers.items():
        lowered.setdefault(k.lower(), []).append(v)
    sts = signatures.acs3_string_to_sign(
        auth.algorithm,
        "POST",
        "/",
        list(query.items()),
        auth.signed_headers,
        lambda n: lowered.get(n, []),
        signatures.hash_hex(auth.algorithm, body),
    )
    return auth, signatures.acs3_signature(auth.algorithm, secret, sts)


@SETTINGS
@given(
    query=params,
    extra=st.dictionaries(st.sampled_from(["user-agent", "x-acs-extra", "content-type"]), values.map(str.strip)),
    body=st.binary(max_size=64),
    secret=secrets,
    algorithm=st.sampled_from(sorted(signatures.ACS3_ALGORITHMS)),
)
def test_acs3_matches_the_sdk(query, extra, body, secret, algorithm) -> None:
    # header values reach the server as latin-1; keep them in that range
    extra = {k: v.encode("latin-1", "ignore").decode("latin-1") for k, v in extra.items()}
    headers = {
        "host": "127.0.0.1:8080",
        "x-acs-action": "GetSecretValue",
        "x-acs-version": "2016-01-20",
        "x-acs-date": "2025-01-01T00:00:00Z",
        "x-acs-signature-nonce": "n",
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
        **extra,
    }
    authorization = _sdk_acs3(algorithm, query, headers, body, secret)
    auth, expected = _server_acs3(authorization, query, headers, body, secret)
    assert auth.algorithm == algorithm and auth.access_key_id == "LTAIkey"
    assert signatures.same_signature(expected, auth.signature)
    # any change the signature covers is detected
    assert not signatures.same_signature(
        _server_acs3(authorization, query, headers, body + b"!", secret)[1], auth.signature
    )
    assert not signatures.same_signature(
        _server_acs3(authorization, query, headers, body, secret + "x")[1], auth.signature
    )
    tampered = dict(query, Injected="1")
    assert not signatures.same_signature(
        _server_acs3(authorization, tampered, headers, body, secret)[1], auth.signature
    )


@SETTINGS
@given(query=params, form=params, secret=secrets)
def test_rpc_matches_the_sdk(query, form, secret) -> None:
    signed = {**query, **form, "AccessKeyId": "LTAIkey", "SignatureMethod": "HMAC-SHA1"}
    expected = SdkUtils.get_rpcsignature(signed, "POST", secret)
    ours = signatures.rpc_signature(secret, signatures.rpc_string_to_sign("POST", {**signed, "Signature": expected}))
    assert ours == expected
    assert signatures.rpc_signature(secret, signatures.rpc_string_to_sign("GET", signed)) != expected
    assert signatures.rpc_signature(secret + "x", signatures.rpc_string_to_sign("POST", signed)) != expected


def test_canonical_headers_sort_like_the_sdk() -> None:
    from alibabacloud_tea_openapi.utils import get_canonicalized_headers

    headers = {"x-acs-b": " 2 ", "Host": "h", "x-acs-a": "1"}
    ours = signatures.canonical_headers(
        ["x-acs-b", "Host", "x-acs-a"], lambda n: [headers[k] for k in headers if k.lower() == n]
    )
    assert ours == get_canonicalized_headers(headers) == ("host:h\nx-acs-a:1\nx-acs-b:2\n", "host;x-acs-a;x-acs-b")


def test_canonical_query_encoding() -> None:
    # RFC 3986 with '~' kept; space is %20 (not +); keys are taken as they are, values are encoded
    assert signatures.canonical_query([("b", "a b+c~*"), ("a", "/=&")]) == "a=%2F%3D%26&b=a%20b%2Bc~%2A"
    assert signatures.canonical_query([]) == ""


@pytest.mark.parametrize(
    "header",
    [
        "",
        "ACS3-HMAC-SHA256",
        "ACS3-HMAC-SHA256 ",
        "ACS4-HMAC-SHA256 Credential=a,SignedHeaders=host,Signature=00",
        "ACS3-RSA-SHA256 Credential=a,SignedHeaders=host,Signature=00",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host",
        "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=00",
        "ACS3-HMAC-SHA256 Credential=a,SignedHeaders=host;;x,Signature=00",
        "ACS3-HMAC-SHA256 Credential=a,Credential=b,SignedHeaders=host,Signature=00",
        "ACS3-HMAC-SHA256 garbage",
        "Bearer abc",
    ],
)
def test_malformed_authorization_is_rejected(header: str) -> None:
    with pytest.raises(SignatureFormatError):
        parse_acs3_authorization(header)


def test_authorization_parse_tolerates_spaces() -> None:
    auth = parse_acs3_authorization("ACS3-HMAC-SHA256 Credential=AK, SignedHeaders=Host;X-Acs-Date, Signature=ab")
    assert (auth.access_key_id, auth.signed_headers, auth.signature) == ("AK", ("host", "x-acs-date"), "ab")


def test_same_signature_handles_non_ascii() -> None:
    assert not signatures.same_signature("abc", "äbc")
    assert signatures.same_signature("abc", "abc")
