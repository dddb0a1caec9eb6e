"""Fuzzing the lab Trustee: malformed JSON, bad JWTs, traversal-looking paths. It must answer an error, never crash,
and never touch a file outside its state dir."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, attest_body, bound_runtime_data, make_admin_token, sample_evidence
from cai_tui.crypto.jose import b64url_encode, jwt_unverified
from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.trustee import TrusteeLab, TrusteeSettings

FUZZ = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
KBS_ERROR = "https://github.com/confidential-containers/kbs/errors/"


@pytest.fixture
def sandbox(tmp_path: Path, admin_keys: tuple[bytes, bytes], faults: FaultSwitches):
    """A lab whose state dir sits next to an 'outside' dir with a sentinel; yields (lab, root, admin token)."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"untouched")
    lab = TrusteeLab(tmp_path / "state", admin_keys[1], faults, TrusteeSettings(flavour="upstream")).start()
    lab.set_resource("default", "test", "model_key", b"k")
    with httpx.Client(base_url=lab.base_url, timeout=5) as http:
        lab.http = http  # type: ignore[attr-defined]  # one keep-alive client for all examples
        yield lab, tmp_path, make_admin_token(admin_keys[0])
    lab.stop()
    _assert_contained(tmp_path)


def _assert_contained(root: Path) -> None:
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())
    assert (root / "outside" / "secret").read_bytes() == b"untouched"
    for rel in files:
        if rel == "outside/secret":
            continue
        parts = rel.split("/")
        assert parts[:2] == ["state", "kbs-repository"] and len(parts) == 5, rel
        assert all(p and not p.startswith(".") for p in parts[2:]), rel


def raw_request(port: int, method: str, target: bytes, headers: dict[str, str] | None = None, body: bytes = b"") -> int:
    """Send one request with the target bytes exactly as given (httpx would normalise dot segments)."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}".encode("latin-1"))
    lines.append(b"Content-Length: " + str(len(body)).encode())
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status_line = data.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), data[:200]
    return int(status_line.split()[1])


def _alive(lab: TrusteeLab) -> None:
    assert lab.http.get("/healthz").status_code == 200  # type: ignore[attr-defined]
    assert not log_has(lab, "internal error handling")


_JSONISH = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)),
        lambda kids: st.one_of(
            st.lists(kids, max_size=4),
            st.dictionaries(
                st.sampled_from(
                    [
                        "version",
                        "tee",
                        "extra-params",
                        "runtime-data",
                        "nonce",
                        "tee-pubkey",
                        "tee-evidence",
                        "policy",
                        "policy_id",
                        "verification_requests",
                        "evidence",
                        "kty",
                        "x",
                        "y",
                        "n",
                        "e",
                        "alg",
                    ]
                )
                | st.text(max_size=8),
                kids,
                max_size=5,
            ),
        ),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
)
_ENDPOINTS = [
    ("POST", "/kbs/v0/auth"),
    ("POST", "/kbs/v0/attest"),
    ("POST", "/kbs/v0/resource-policy"),
    ("POST", "/kbs/v0/attestation-policy"),
    ("POST", "/api/kbs/v0/auth"),
    ("POST", "/trustee/kbs/v0/attest"),
    ("POST", "/attestation"),
    ("POST", "/challenge"),
    ("POST", "/policy"),
    ("POST", "/api/as/attestation"),
]


@FUZZ
@given(endpoint=st.sampled_from(_ENDPOINTS), body=_JSONISH, with_admin=st.booleans(), with_cookie=st.booleans())
def test_malformed_json_gets_an_error_answer(
    sandbox, endpoint, body: bytes, with_admin: bool, with_cookie: bool
) -> None:
    lab, _, admin = sandbox
    method, path = endpoint
    headers = {"Content-Type": "application/json"}
    if with_admin:
        headers["Authorization"] = f"Bearer {admin}"
    if with_cookie:
        headers["Cookie"] = "kbs-session-id=" + os.urandom(4).hex()
    resp = lab.http.request(method, path, content=body, headers=headers)
    assert resp.status_code < 600
    if path.startswith(("/kbs/", "/api/kbs/", "/trustee/kbs/")) and resp.status_code != 200:
        assert resp.json()["type"].startswith(KBS_ERROR)
    if resp.status_code == 500 and not path.startswith(("/kbs", "/api/kbs", "/trustee/kbs")):
        assert resp.text.startswith("An internal error occured")
    _alive(lab)


_HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300)


@FUZZ
@given(
    token=st.one_of(
        _HEADER_TEXT,
        st.tuples(_HEADER_TEXT, _HEADER_TEXT, _HEADER_TEXT).map(".".join),
        st.tuples(
            st.sampled_from(["eyJhbGciOiJFZERTQSJ9", "eyJhbGciOiJub25lIn0", "eyJhbGciOiJFUzI1NiJ9", "e30"]),
            st.sampled_from(["eyJleHAiOjk5OTk5OTk5OTl9", "e30", "W10"]),
            st.text(alphabet="ABCDEFabcdef0123456789-_", max_size=90),
        ).map(".".join),
    ),
    scheme=st.sampled_from(["Bearer", "bearer", "Basic", "Token"]),
)
def test_bad_jwts_are_refused(sandbox, token: str, scheme: str) -> None:
    lab, _, _ = sandbox
    header = {"Authorization": f"{scheme} {token}"}
    resp = lab.http.get("/kbs/v0/resource/default/test/model_key", headers=header)
    assert resp.status_code == 401
    assert resp.json()["type"].rsplit("/", 1)[-1] in ("TokenVerifierError", "TokenNotFound")
    resp = lab.http.post("/kbs/v0/resource/default/test/other", content=b"x", headers=header)
    assert resp.status_code == 401 and resp.json()["type"].endswith("/AdminAuth")
    assert not (lab.state_dir / "kbs-repository/default/test/other").exists()
    _alive(lab)


_NASTY = [
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    "%2e",
    ".%2e",
    "%2f",
    "..%2f..",
    "%2F..%2F..",
    "%00",
    "a%00b",
    "%5c..%5c",
    "..\\..",
    "~",
    "C:",
    "%252e%252e",
    "etc",
    "passwd",
    "outside",
    "secret",
    "",
    "%",
    "%zz",
    "%c0%ae%c0%ae",
    "\u2025",
    "a b",
    "x" * 300,
]
_SEGMENT = st.one_of(st.sampled_from(_NASTY), st.text(alphabet="abc.%/\\~:2eEfF0", max_size=12))


@FUZZ
@given(
    prefix=st.sampled_from(["/kbs/v0/resource", "/api/kbs/v0/resource", "/trustee/kbs/v0/resource"]),
    segments=st.lists(_SEGMENT, min_size=0, max_size=6),
    method=st.sampled_from(["POST", "GET", "DELETE"]),
)
def test_traversal_looking_paths_never_escape_the_state_dir(
    sandbox, prefix: str, segments: list[str], method: str
) -> None:
    lab, root, admin = sandbox
    target = (prefix + "/" + "/".join(segments)).encode("utf-8")
    headers = {"Authorization": f"Bearer {admin}"}
    status = raw_request(lab.port, method, target, headers, body=b"fuzz")
    assert 200 <= status < 600
    plain = [s for s in segments if s]
    clean = len(segments) == 3 and all(
        s and s[0] not in ".%" and set(s) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")
        for s in segments
    )
    if status == 200 and method == "POST":
        assert clean, segments
        assert (root / "state" / "kbs-repository" / plain[0] / plain[1] / plain[2]).read_bytes() == b"fuzz"
    _assert_contained(root)
    _alive(lab)


@pytest.mark.parametrize(
    "target",
    [
        b"/kbs/v0/resource/../../../outside/secret",
        b"/kbs/v0/resource/default/../../outside",
        b"/kbs/v0/resource/%2e%2e/%2e%2e/secret",
        b"/kbs/v0/resource//tmp/cai-tui-fuzz-abs",
        b"/kbs/v0/resource/default/test/a\x00b",
        b"/kbs/v0/resource/default/test/%00",
        b"/trustee/kbs/v0/resource/..%2f..%2foutside/x/secret",
        b"/kbs/v0/resource/default/test/" + "\u00e9".encode(),
    ],
)
@pytest.mark.parametrize("method", ["POST", "GET", "DELETE"])
def test_known_traversals(sandbox, target: bytes, method: str) -> None:
    lab, root, admin = sandbox
    status = raw_request(lab.port, method, target, {"Authorization": f"Bearer {admin}"}, body=b"pwned")
    assert status in (401, 404)  # upstream flavour: PluginInternalError is 401
    assert not Path("/tmp/cai-tui-fuzz-abs").exists()
    _assert_contained(root)
    _alive(lab)


def test_non_path_request_targets(sandbox) -> None:
    lab, _, _ = sandbox
    assert raw_request(lab.port, "GET", b"kbs/v0/auth") == 400
    assert raw_request(lab.port, "GET", b"http://127.0.0.1/kbs/v0/auth") == 400
    assert raw_request(lab.port, "POST", b"/kbs/v0/auth", {"Content-Length": "x"}) in (400, 502)
    _alive(lab)


def test_attested_get_of_traversal_paths(sandbox) -> None:
    lab, root, _ = sandbox
    with KbsClient(lab.base_url) as kc:
        token = kc.attest_sample()
    for target in (b"/kbs/v0/resource/../state/x", b"/kbs/v0/resource/default/test/..", b"/kbs/v0/resource/a/b"):
        assert raw_request(lab.port, "GET", target, {"Authorization": f"Bearer {token}"}) == 401
    assert (
        raw_request(lab.port, "GET", b"/kbs/v0/resource/default/test/model_key", {"Authorization": f"Bearer {token}"})
        == 200
    )
    assert log_has(lab, "illegal ResourceDesc format")
    _assert_contained(root)


def test_oversized_inputs_are_bounded(sandbox) -> None:
    lab, _, admin = sandbox
    http = lab.http  # type: ignore[attr-defined]
    # A request target of 60 KB names an unknown plugin: answered, and logged truncated.
    resp = http.get("/kbs/v0/" + "p" * 60_000)
    assert resp.status_code == 404 and resp.json()["type"].endswith("/PluginNotFound")
    assert max(len(line) for line in lab.server_log()) < 2200
    # A 2 MiB rego is refused (1 MiB cap).
    big = b64url_encode(b"package policy\n" + b"#" * (2 * 1024 * 1024))
    resp = http.post("/kbs/v0/resource-policy", json={"policy": big}, headers={"Authorization": f"Bearer {admin}"})
    assert resp.status_code == 401 and "larger than the lab accepts" in resp.json()["detail"]
    # A tee-pubkey with a huge member and oversized init-data are refused at attest.
    with KbsClient(lab.base_url) as kc:
        kc.auth(tee="sample", extra_params="")
        cookie = {"Cookie": f"kbs-session-id={kc.session_id}"}
        jwk = {"kty": "RSA", "alg": "RSA-OAEP-256", "n": "A" * 10_000, "e": "AQAB"}
        body = {"tee-pubkey": jwk, "tee-evidence": "{}"}  # the lab's default protocol 0.1.0
        assert http.post("/kbs/v0/attest", json=body, headers=cookie).status_code == 401
        assert log_has(lab, "field `n` is too long")
    with KbsClient(lab.base_url) as kc:
        lab.settings.protocol_version = "0.4.0"  # init-data exists from protocol 0.4.0
        kc.auth(tee="sample", extra_params="", negotiate=True)
        cookie = {"Cookie": f"kbs-session-id={kc.session_id}"}
        key = kc.new_tee_key()
        evidence = sample_evidence(bound_runtime_data("0.4.0", kc.nonce or "", key))
        body = attest_body("0.4.0", nonce=kc.nonce or "", tee_pubkey=key, evidence=evidence)
        body["init-data"] = {"format": "toml", "body": "x" * 100_000}
        assert http.post("/kbs/v0/attest", json=body, headers=cookie).status_code == 401
        assert log_has(lab, "init-data larger than the lab accepts")
        body["init-data"] = {"format": "toml", "body": "algorithm = 'sha384'"}
        token = http.post("/kbs/v0/attest", json=body, headers=cookie).json()["token"]
        annotated = jwt_unverified(token)[1]["submods"]["cpu0"]["ear.veraison.annotated-evidence"]
        assert annotated["init_data_claims"] == body["init-data"]


@pytest.mark.parametrize("path", [p for _, p in _ENDPOINTS])
def test_deeply_nested_json_is_an_error_not_a_crash(sandbox, path: str) -> None:
    lab, _, admin = sandbox
    body = b"[" * 200_000 + b"]" * 200_000
    resp = lab.http.post(path, content=body, headers={"Authorization": f"Bearer {admin}"})  # type: ignore[attr-defined]
    assert resp.status_code in (400, 401, 500)
    _alive(lab)
