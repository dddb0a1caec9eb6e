"""Authentication as oss2 sees it: bad secrets, unknown keys, STS tokens, clock skew, error documents."""

from __future__ import annotations

import ast
import base64
import logging
import time
import xml.etree.ElementTree as ET
from email.utils import formatdate

import httpx
import oss2
import pytest


def client_string_to_sign(caplog) -> str:
    """What oss2 itself signed (it logs the string at DEBUG)."""
    msgs = [r.getMessage() for r in caplog.records if "string to be signed = " in r.getMessage()]
    text = msgs[-1].split("string to be signed = ", 1)[1]
    value = ast.literal_eval(text) if text.startswith("b'") or text.startswith('b"') else text
    return value.decode() if isinstance(value, bytes) else value


def test_wrong_secret_v1_names_the_string_to_sign(oss_lab_bucket_for, oss_lab_keys, caplog):
    caplog.set_level(logging.DEBUG, logger="oss2.auth")
    bucket = oss_lab_bucket_for(oss2.Auth(oss_lab_keys.owner_id, "not-the-secret"))
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bucket.get_object("some/key.txt", headers={"x-oss-meta-a": "1"})
    e = ei.value
    assert e.details["StringToSign"] == client_string_to_sign(caplog)
    assert e.status == 403 and e.ec == "0002-00000040"
    sts = e.details["StringToSign"]
    lines = sts.split("\n")
    assert lines[0] == "GET"
    assert "x-oss-meta-a:1" in lines
    assert lines[-1] == "/lab-bucket/some/key.txt"
    assert e.details["OSSAccessKeyId"] == oss_lab_keys.owner_id
    assert e.request_id


def test_wrong_secret_v4(oss_lab_bucket_for, oss_lab_keys, caplog):
    caplog.set_level(logging.DEBUG, logger="oss2.auth")
    bucket = oss_lab_bucket_for(oss2.AuthV4(oss_lab_keys.owner_id, "not-the-secret"))
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bucket.get_bucket_info()
    sts = ei.value.details["StringToSign"]
    assert sts == client_string_to_sign(caplog)
    assert sts.startswith("OSS4-HMAC-SHA256\n")
    assert "/cn-lab/oss/aliyun_v4_request\n" in sts
    assert ei.value.details["CanonicalRequest"].startswith("GET\n/lab-bucket/\nbucketInfo\n")


def test_v4_scoped_to_another_region_is_refused(oss_lab, oss_lab_keys):
    bucket = oss2.Bucket(
        oss2.AuthV4(oss_lab_keys.owner_id, oss_lab_keys.owner_secret),
        oss_lab.endpoint,
        "lab-bucket",
        region="cn-hangzhou",
    )
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch) as ei:
        bucket.get_bucket_info()
    assert "region" in ei.value.message


def test_unknown_access_key(oss_lab_bucket_for):
    bucket = oss_lab_bucket_for(oss2.Auth("LTAInobody", "whatever"))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.get_bucket_info()
    e = ei.value
    assert type(e) is oss2.exceptions.ServerError
    assert (e.status, e.code) == (403, "InvalidAccessKeyId")
    assert e.message == "The OSS Access Key Id you provided does not exist in our records."


def test_head_errors_travel_in_x_oss_err(oss_lab_bucket_for):
    bucket = oss_lab_bucket_for(oss2.Auth("LTAInobody", "whatever"))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        bucket.head_object("k")
    assert ei.value.code == "InvalidAccessKeyId"
    doc = ET.fromstring(base64.b64decode(ei.value.headers["x-oss-err"]))
    assert doc.findtext("Code") == "InvalidAccessKeyId"
    assert doc.findtext("RequestId") == ei.value.request_id


def test_sts_token_valid_expired_unknown(oss_lab, oss_lab_bucket_for, oss_lab_keys, oss_lab_credentials):
    k = oss_lab_keys
    ok = oss_lab_bucket_for(oss2.StsAuth(k.sts_id, k.sts_secret, k.sts_token))
    ok.put_object("sts.txt", b"temp")
    assert ok.get_object("sts.txt").read() == b"temp"

    expired = oss_lab_bucket_for(oss2.StsAuth(k.sts_expired_id, k.sts_expired_secret, k.sts_expired_token))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        expired.get_object("sts.txt")
    assert (ei.value.status, ei.value.code) == (403, "SecurityTokenExpired")
    assert ei.value.message == "The security token you provided has expired."

    unknown = oss_lab_bucket_for(oss2.StsAuth(k.sts_id, k.sts_secret, "CAIS-never-issued"))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        unknown.get_object("sts.txt")
    assert (ei.value.status, ei.value.code) == (403, "InvalidSecurityToken")

    no_token = oss_lab_bucket_for(oss2.Auth(k.sts_id, k.sts_secret))
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        no_token.get_object("sts.txt")
    assert ei.value.code == "InvalidAccessKeyId"

    wrong_secret = oss_lab_bucket_for(oss2.StsAuth(k.sts_id, "nope", k.sts_token, auth_version=oss2.AUTH_VERSION_4))
    with pytest.raises(oss2.exceptions.SignatureDoesNotMatch):
        wrong_secret.get_object("sts.txt")

    # a token that expires while in use (re-registered with a past expiry: no sleeping, no timing race)
    oss_lab_credentials.add_sts_token("CAIS-short", "STS.short", "short-secret", time.time() + 600)
    short = oss_lab_bucket_for(oss2.StsAuth("STS.short", "short-secret", "CAIS-short"))
    assert short.get_object("sts.txt").read() == b"temp"
    oss_lab_credentials.add_sts_token("CAIS-short", "STS.short", "short-secret", time.time() - 1)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        short.get_object("sts.txt")
    assert ei.value.code == "SecurityTokenExpired"


def test_clock_skew_window(oss_lab_bucket):
    oss_lab_bucket.put_object("t.txt", b"t")
    # V1 signs x-oss-date when present, and OSS takes the request time from it
    ten_min_ago = formatdate(time.time() - 600, usegmt=True)
    assert oss_lab_bucket.get_object("t.txt", headers={"x-oss-date": ten_min_ago}).read() == b"t"
    twenty_min_ago = formatdate(time.time() - 1200, usegmt=True)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        oss_lab_bucket.get_object("t.txt", headers={"x-oss-date": twenty_min_ago})
    e = ei.value
    assert (e.status, e.code, e.ec) == (403, "RequestTimeTooSkewed", "0002-00000504")
    assert e.details["RequestTime"] == twenty_min_ago
    assert e.details["MaxAllowedSkewMilliseconds"] == "900000"
    future = formatdate(time.time() + 1200, usegmt=True)
    with pytest.raises(oss2.exceptions.ServerError) as ei:
        oss_lab_bucket.get_object("t.txt", headers={"x-oss-date": future})
    assert ei.value.code == "RequestTimeTooSkewed"


def test_anonymous_and_malformed_authorization(oss_lab):
    with httpx.Client(base_url=oss_lab.endpoint, timeout=5) as c:
        r = c.get("/lab-bucket/k")
        assert r.status_code == 403 and b"<Code>AccessDenied</Code>" in r.content
        r = c.get("/lab-bucket/k", headers={"Authorization": "Bearer abc", "Date": formatdate(usegmt=True)})
        assert r.status_code == 400 and b"<Code>InvalidArgument</Code>" in r.content
        r = c.get("/lab-bucket/k", headers={"Authorization": "OSS nocolon", "Date": formatdate(usegmt=True)})
        assert r.status_code == 400
        r = c.get("/lab-bucket/k", headers={"Authorization": "OSS LTAIowner0000000001:sig", "Date": "yesterday"})
        assert r.status_code == 403 and b"valid Date" in r.content


def test_signed_url_v1(oss_lab_bucket):
    oss_lab_bucket.put_object("shared.txt", b"via url")
    url = oss_lab_bucket.sign_url("GET", "shared.txt", 60)
    assert httpx.get(url, timeout=5).content == b"via url"
    tampered = url.replace("shared.txt", "other.txt")
    assert httpx.get(tampered, timeout=5).status_code == 403
    expired = oss_lab_bucket.sign_url("GET", "shared.txt", -10)
    r = httpx.get(expired, timeout=5)
    assert r.status_code == 403 and b"Request has expired." in r.content


def test_error_document_shape(oss_lab):
    with httpx.Client(base_url=oss_lab.endpoint, timeout=5) as c:
        r = c.get("/no-such-bucket-here/k")
    assert r.status_code == 404
    doc = ET.fromstring(r.content)
    assert doc.tag == "Error"
    assert [child.tag for child in doc][:4] == ["Code", "Message", "RequestId", "HostId"]
    assert doc.findtext("Code") == "NoSuchBucket"
    assert doc.findtext("EC") == "0015-00000101"
    assert doc.findtext("RequestId") == r.headers["x-oss-request-id"]
    assert r.headers["x-oss-ec"] == "0015-00000101"
    assert r.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
