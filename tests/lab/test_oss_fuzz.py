"""Hostile input: malformed requests, bad signatures, garbage headers and path-traversal keys.

The server must always answer with a proper OSS answer (or close a connection it cannot parse), keep serving, and never
create anything outside its state directory.
"""

from __future__ import annotations

import http.client
import os
import re
import socket
import xml.etree.ElementTree as ET
from email.utils import formatdate
from pathlib import Path
from urllib.parse import quote

import oss2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

TRAVERSAL_KEYS = [
    "../../etc/passwd",
    "a/../../b",
    "..",
    ".",
    "./x",
    "..\\..\\windows\\win.ini",
    "/etc/passwd",
    "//double",
    "\\back",
    "a\x00b",
    "nul\x00",
    "ctrl\x01\x1f",
    "x" * 1023,
    "y" * 1024,
    "ü" * 600,
    "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "dir/",
    "a//b",
    "~/.ssh/id_rsa",
    "C:\\Windows\\system32",
]

FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def assert_state_layout(tmp_path: Path, state: Path) -> None:
    """Nothing outside the state dir; inside it only the store's own names."""
    assert {p.name for p in tmp_path.iterdir()} == {"state"}
    allowed = re.compile(
        r"oss|oss/(index\.sqlite3(-wal|-shm|-journal)?|blobs|tmp|blobs/[0-9a-f]{64}|tmp/[0-9a-f]{32}\.part)"
    )
    for rel in tree(state):
        assert allowed.fullmatch(rel), rel


def assert_oss_answer(status: int, headers: dict[str, str], body: bytes, method: str) -> None:
    assert 200 <= status < 500 or status in (501, 505), (status, body[:300])  # never a 500: that is a server bug
    assert re.fullmatch(r"[0-9A-F]{24}", headers.get("x-oss-request-id", "")), headers
    if status >= 400 and method != "HEAD":
        doc = ET.fromstring(body)
        assert doc.tag == "Error"
        assert doc.findtext("Code")
        assert doc.findtext("RequestId") == headers["x-oss-request-id"]


def raw_exchange(
    port: int, method: str, path: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def assert_alive(bucket: oss2.Bucket) -> None:
    bucket.put_object("alive.txt", b"ok")
    assert bucket.get_object("alive.txt").read() == b"ok"


# --- strategies ------------------------------------------------------------------------------------------------------

token_chars = st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters=":")
header_value = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=80)
path_piece = st.one_of(
    st.sampled_from(TRAVERSAL_KEYS),
    st.text(max_size=40),
    st.sampled_from(["%00", "%2F", "%2e%2e", "%", "%zz", "%C3%28", "%FF", "?", "#", ";", "&"]),
)
malformed_xml = st.sampled_from(
    [
        b"",
        b"<",
        b"<CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>1</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY b "cc"><!ENTITY c "&b;&b;">]>'
        b"<CompleteMultipartUpload>&c;</CompleteMultipartUpload>",
        b"\xff\xfe<\x00a\x00>",
        b"{not: xml}",
        b'{"Version":"1","Statement":[{"Effect":"Allow"}]}',
    ]
)


@st.composite
def requests_(draw):
    method = draw(
        st.sampled_from(["GET", "HEAD", "PUT", "POST", "DELETE"] * 3 + ["OPTIONS", "PATCH", "PROPFIND", "G3T"])
    )
    bucket = draw(
        st.one_of(st.just("lab-bucket"), st.sampled_from(["Bad_Bucket", "no-such-bucket", "", "a", "..", "%2e%2e"]))
    )
    key = draw(path_piece)
    raw_key = (
        key
        if draw(st.booleans())
        else "".join(
            c if c.isascii() and c.isprintable() and c not in "?# " else f"%{b:02X}"
            for c in key
            for b in [ord(c) if ord(c) < 256 else 63]
        )
    )
    raw_key = raw_key.replace(" ", "%20").replace("\r", "").replace("\n", "")
    raw_key = "".join(ch for ch in raw_key if 0x21 <= ord(ch) < 0x7F or ch == "%")
    query_keys = st.sampled_from(
        [
            "uploads",
            "uploadId",
            "partNumber",
            "policy",
            "bucketInfo",
            "acl",
            "prefix",
            "marker",
            "max-keys",
            "list-type",
            "continuation-token",
            "encoding-type",
            "objectMeta",
            "delete",
            "x-oss-process",
            "OSSAccessKeyId",
            "Signature",
            "Expires",
            "security-token",
        ]
    )
    params = draw(st.dictionaries(query_keys, st.text(token_chars, max_size=12), max_size=3))
    query = "&".join(f"{k}={v}" if v else k for k, v in params.items())
    path = f"/{bucket}/{raw_key}" + (f"?{query}" if query else "")
    headers = draw(
        st.dictionaries(
            st.sampled_from(
                [
                    "Authorization",
                    "Date",
                    "x-oss-date",
                    "x-oss-security-token",
                    "Content-MD5",
                    "Content-Type",
                    "Range",
                    "If-Match",
                    "If-Modified-Since",
                    "x-oss-meta-a",
                    "x-oss-content-sha256",
                    "Transfer-Encoding",
                    "x-oss-range-behavior",
                    "x-oss-forbid-overwrite",
                    "x-oss-complete-all",
                ]
            ),
            st.one_of(
                header_value,
                st.sampled_from(
                    [
                        "OSS LTAIowner0000000001:AAAA",
                        "OSS4-HMAC-SHA256 Credential=LTAIowner0000000001/20200101/cn-lab/oss/aliyun_v4_request, "
                        "Signature=00",
                        "OSS2 AccessKeyId:LTAIowner0000000001,Signature:xx",
                        "OSS :",
                        formatdate(usegmt=True),
                        "bytes=0-",
                        "bytes=-0",
                        "bytes=9-1",
                    ]
                ),
            ),
            max_size=5,
        )
    )
    headers.pop("Transfer-Encoding", None)  # the body is always sent with a Content-Length here
    headers["Host"] = "127.0.0.1"
    body = draw(st.one_of(malformed_xml, st.binary(max_size=200)))
    return method, path, headers, body


@FUZZ_SETTINGS
@given(req=requests_())
def test_fuzzed_requests_get_oss_answers(oss_lab, oss_lab_bucket, oss_lab_state, tmp_path, req):
    method, path, headers, body = req
    status, hdrs, data = raw_exchange(oss_lab.port, method, path, headers, body)
    event(f"{status} {ET.fromstring(data).findtext('Code') if status >= 400 and data else ''}")
    assert_oss_answer(status, hdrs, data, method)
    assert_state_layout(tmp_path, oss_lab_state)


@FUZZ_SETTINGS
@given(key=st.one_of(st.sampled_from(TRAVERSAL_KEYS), st.text(min_size=1, max_size=300)), data=st.binary(max_size=64))
def test_fuzzed_keys_through_oss2(oss_lab, oss_lab_bucket, oss_lab_state, tmp_path, key, data):
    """Any key a user can type is either stored opaquely (and comes back) or refused with an OSS error.

    (Keys "." and ".." are dot-segments that the HTTP client itself removes from the URL, so they reach the server as
    another request and fail as they would against the cloud: SignatureDoesNotMatch / MethodNotAllowed.)"""
    try:
        oss_lab_bucket.put_object(key, data)
    except oss2.exceptions.ServerError as e:
        event(f"refused {e.code}")
        assert 400 <= e.status < 500 and e.code, e
    else:
        got = oss_lab_bucket.get_object(key)
        assert got.read() == data
        assert key in [o.key for o in oss_lab_bucket.list_objects(prefix=key).object_list]
        oss_lab_bucket.delete_object(key)
    assert_state_layout(tmp_path, oss_lab_state)


@pytest.mark.parametrize("key", TRAVERSAL_KEYS, ids=[repr(k)[:40] for k in TRAVERSAL_KEYS])
def test_traversal_keys_on_the_wire(oss_lab, oss_lab_raw, oss_lab_state, tmp_path, key):
    """Signed and sent unencoded where HTTP allows it (else percent-encoded): the key is a name, never a path."""
    verbatim = all(0x21 <= ord(c) < 0x7F for c in key) and not any(c in key for c in "%?#")
    r = oss_lab_raw("PUT", "lab-bucket", key, data=b"payload", quote_key=not verbatim)
    if r.status_code == 200:
        g = oss_lab_raw("GET", "lab-bucket", key, quote_key=not verbatim)
        assert g.status_code == 200 and g.content == b"payload"
        listed = oss_lab_raw("GET", "lab-bucket", params={"prefix": key, "encoding-type": "url"})
        assert f"<Key>{quote(key, safe='')}</Key>".encode() in listed.content
    else:
        assert r.status_code == 400, r.content
        assert b"<Code>InvalidObjectName</Code>" in r.content
    assert_state_layout(tmp_path, oss_lab_state)


@pytest.mark.parametrize(
    "key,expected",
    [
        ("/etc/passwd", "InvalidObjectName"),
        ("\\x", "InvalidObjectName"),
        ("a\x00b", "InvalidObjectName"),
        ("y" * 1024, "InvalidObjectName"),
        ("../../etc/passwd", None),
        ("a/../../b", None),
        ("x" * 1023, None),
    ],
)
def test_key_rules(oss_lab_bucket, key, expected):
    if expected is None:
        oss_lab_bucket.put_object(key, b"v")
        assert oss_lab_bucket.get_object(key).read() == b"v"
        assert [o.key for o in oss_lab_bucket.list_objects(prefix=key).object_list] == [key]
    else:
        with pytest.raises(oss2.exceptions.ServerError) as ei:
            oss_lab_bucket.put_object(key, b"v")
        assert (ei.value.status, ei.value.code) == (400, expected)


GARBAGE = [
    b"\x00\x01\x02\r\n\r\n",
    b"GET\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET /lab-bucket/k HTTP/1.1\r\n" + b"X-A: b\r\n" * 150 + b"\r\n",
    b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
    b"PUT /lab-bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"PUT /lab-bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    b"PUT /lab-bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: \xb2\r\n\r\n",
    b"PUT /lab-bucket/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"PUT /lab-bucket/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
    b"PUT /lab-bucket/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
    b"GET lab-bucket/k HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET http://127.0.0.1/lab-bucket/k HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\xff\xfe\xfd HTTP/1.1\r\n\r\n",
    b"GET /lab-bucket/\xc3\x28 HTTP/1.1\r\nHost: x\r\n\r\n",
]


@pytest.mark.parametrize("payload", GARBAGE, ids=[f"garbage{i}" for i in range(len(GARBAGE))])
def test_garbage_on_the_socket(oss_lab, oss_lab_bucket, oss_lab_state, tmp_path, payload):
    with socket.create_connection(("127.0.0.1", oss_lab.port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        answer = b""
        try:
            while chunk := s.recv(65536):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    if answer:
        assert answer.startswith(b"HTTP/1.") or answer.startswith(b"<?xml"), answer[:80]
        if answer.startswith(b"HTTP/1."):
            head, _, body = answer.partition(b"\r\n\r\n")
            assert b"x-oss-request-id" in head.lower()
            status = int(head.split(b" ", 2)[1])
            assert status != 500, answer[:300]
            if status >= 400 and body:
                assert ET.fromstring(body).tag == "Error"
    assert_alive(oss_lab_bucket)
    assert_state_layout(tmp_path, oss_lab_state)


def test_bad_signatures_fuzz(oss_lab, oss_lab_bucket_for, oss_lab_keys):
    """Random secrets never authenticate; every answer names the signature problem."""
    for i in range(30):
        secret = os.urandom(8).hex() + str(i)
        for auth in (oss2.Auth(oss_lab_keys.owner_id, secret), oss2.AuthV4(oss_lab_keys.owner_id, secret)):
            with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
                oss_lab_bucket_for(auth).put_object("never.txt", b"x")
    assert not oss_lab_bucket_for(oss2.Auth(oss_lab_keys.owner_id, oss_lab_keys.owner_secret)).object_exists(
        "never.txt"
    )
