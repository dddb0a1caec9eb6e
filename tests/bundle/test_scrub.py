"""The scrubber on tricky inputs: secrets split across quoting, inside JSON, in URLs, encoded, unknown to the recipe."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from cai_tui.bundle.scrub import Scrubber, variants

SECRET = "Xq7-s3cr3t/Val+ue=9Z"
AK_ID = "LTAI5tQk8Yh2mWzRt7Nc3Bv1"


@pytest.fixture
def s() -> Scrubber:
    return Scrubber([SECRET])


def test_known_value_in_every_encoding(s: Scrubber) -> None:
    for form in (
        SECRET,
        quote(SECRET, safe=""),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        json.dumps(SECRET)[1:-1],
    ):
        out = s.scrub(f"before {form} after")
        assert form not in out and out == "before <redacted:known-secret> after", form


@pytest.mark.parametrize("prefix", [b"", b"u", b"us", b"user:"])
def test_known_value_inside_a_longer_base64_run(s: Scrubber, prefix: bytes) -> None:
    """Basic auth and the like: base64 of 'user:SECRET' does not contain base64(SECRET), only its aligned core."""
    blob = base64.b64encode(prefix + SECRET.encode() + b"@tail").decode()
    out = s.scrub(f"X-Thing: {blob}")
    assert blob not in out and "<redacted:known-secret>" in out
    # what is left of the run: the encoding of "@tail" and at most one group straddling the value
    left = out.removeprefix("X-Thing: ").split("<redacted:known-secret>")
    assert all(len(part) <= 12 for part in left), left  # the "@tail" and a straddling group


def test_env_lines_keep_the_key_and_drop_values_split_across_quoting() -> None:
    text = (
        "MODEL_OSS_ACCESS_KEY_SECRET=\"qqa\"'qqb'qqc\n"
        "export DB_PASSWORD='p\"w d'\n"
        "MODEL_OSS_BUCKET_PATH=bucket:/x/\n"
        "MODEL_KEY_ID=kbs:///default/aliyun/model-decryption-key\n"
        "SOME_API_KEY = spaced-value-1234\n"
        "MODEL_OSS_ACCESS_KEY_SECRET=${MODEL_OSS_ACCESS_KEY_SECRET}\n"
    )
    out = Scrubber().scrub(text)
    assert out.splitlines() == [
        "MODEL_OSS_ACCESS_KEY_SECRET=<redacted:env-secret>",
        "export DB_PASSWORD=<redacted:env-secret>",
        "MODEL_OSS_BUCKET_PATH=bucket:/x/",
        "MODEL_KEY_ID=kbs:///default/aliyun/model-decryption-key",
        "SOME_API_KEY = <redacted:env-secret>",
        "MODEL_OSS_ACCESS_KEY_SECRET=${MODEL_OSS_ACCESS_KEY_SECRET}",
    ]
    for piece in ("qqa", "qqb", "qqc", 'p"w', "spaced-value"):
        assert piece not in out


def test_json_values_and_env_arrays() -> None:
    doc = {
        "Env": ['MODEL_PASSWORD=ab"cd', "PATH=/usr/bin"],
        "token": "tok-1234567",
        "max_tokens": 132,
        "secret_name": "model-decryption-key",
        "nested": {"accessKeySecret": "zz-secret-zz"},
    }
    out = Scrubber().scrub(json.dumps(doc))
    back = json.loads(out)  # still valid JSON
    assert back["Env"] == ["MODEL_PASSWORD=<redacted:env-secret>", "PATH=/usr/bin"]
    assert back["token"] == "<redacted:secret-value>" and back["max_tokens"] == 132
    assert back["secret_name"] == "model-decryption-key"  # a name, not a secret
    assert back["nested"]["accessKeySecret"] == "<redacted:secret-value>"


def test_urls_headers_and_cli_flags() -> None:
    text = (
        "GET https://admin:pa%40ss@oss-cn-beijing.aliyuncs.com/x?y=1\n"
        "Authorization: OSS LTAI5tQk8Yh2mWzRt7Nc3Bv1:c2lnbmF0dXJl\n"
        "x-oss-security-token: CAIS8gF1q6Ft5B2yfSjIr5bSD8zv\n"
        "run --password hunter22 --token-url http://h/t --region cn-beijing\n"
    )
    s = Scrubber()
    out = s.scrub(text)
    assert "pa%40ss" not in out and "https://admin:<redacted:url-password>@oss-cn-beijing.aliyuncs.com/x" in out
    assert "Authorization: <redacted:auth-header>" in out and "c2lnbmF0dXJl" not in out
    assert "CAIS8gF1q6Ft5B2yfSjIr5bSD8zv" not in out
    assert "--password <redacted:secret-value>" in out and "--token-url http://h/t" in out
    assert s.counts["url-password"] == 1 and s.counts["auth-header"] == 1 and s.counts["sts-token"] == 1


def test_secret_looking_values_nobody_told_us_about() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmMiLCJleHAiOjF9.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    pem = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oVNE\nAwEHoUQDQgAE\n-----END EC PRIVATE KEY-----"
    text = (
        f"id {AK_ID} sts STS.NUgYrLnoC37mZZCNnAbez2xxx\n{jwt}\n{pem}\n"
        '{"key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n"}\n'
        "kms: AccessKeySecret aB3dE5fG7hJ9kL1mN3pQ5rS7 rejected\n"
        "password is Zx81Qw55Er22Ty09Ui\n"
        "the secret of life is philosophical-musing-words\n"
    )
    s = Scrubber()
    out = s.scrub(text)
    for gone in (
        AK_ID,
        "STS.NUgYrLnoC37mZZCNnAbez2xxx",
        jwt,
        "MHcCAQEEIBkg4LVWM9nu",
        "AwEHoUQDQgAE",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "aB3dE5fG7hJ9kL1mN3pQ5rS7",
        "Zx81Qw55Er22Ty09Ui",
    ):
        assert gone not in out, gone
    assert "philosophical-musing-words" in out  # not random: kept
    assert "-----BEGIN EC PRIVATE KEY-----<redacted:private-key>-----END EC PRIVATE KEY-----" in out
    assert {"access-key-id", "sts-access-key-id", "jwt", "private-key", "high-entropy"} <= set(s.counts)


def test_a_cut_off_private_key_is_removed_to_its_end() -> None:
    out = Scrubber().scrub("log tail:\n-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0B\nAQEFAASC")
    assert "MIIEvQ" not in out and "AQEFAASC" not in out


def test_references_and_benign_lines_are_kept() -> None:
    text = (
        "    password: file:~/cachefs-password\n"
        "    access_key_id: env:OSS_ACCESS_KEY_ID\n"
        "    admin_private_key: keyring:cai/kbs\n"
        "    access_key_secret: prompt\n"
        "    password_file: ~/kms/clientKey_Password.txt\n"
        "ErrorCode: AccessDenied\n"
        "max_tokens: 132\n"
    )
    s = Scrubber()
    assert s.scrub(text) == text and not s.counts


def test_yaml_value_with_comment_and_scrub_bytes() -> None:
    s = Scrubber()
    assert s.scrub("  token: abcdef123456  # the lab's\n") == "  token: <redacted:secret-value>  # the lab's\n"
    raw = b"\xff\xfe binary MODEL_PASSWORD=hunter2hunter2\n"
    assert s.scrub_bytes(raw) == b"\xff\xfe binary MODEL_PASSWORD=<redacted:env-secret>\n"


def test_short_values_are_not_registered_and_variants_cover_multiline() -> None:
    s = Scrubber()
    assert s.add("ab") is False and len(s) == 0
    assert s.add("line-one-value\nline-two-value") is True
    assert s.scrub("x line-two-value y") == "x <redacted:known-secret> y"
    assert SECRET in variants(SECRET) and quote(SECRET, safe="") in variants(SECRET)
