"""The labstack stand-in services, run as host subprocesses against the embedded lab.

The healthy path runs end to end (OSS download → AA + CDH key → the real gocryptfs mount → TNG passport → the
inference server answering); each failure is produced for real (lab fault switches, wrong cai.env values, a wrong
key given to the real gocryptfs) and must end with a non-zero exit and the upstream-format line that carries the
real error — and the FAQ matcher must rank the expected entry first for it.
"""

from __future__ import annotations

import json
import shutil
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.labstack.services_harness import Stack, is_mounted, ranked_faqs, wait_until

pytestmark = pytest.mark.timeout(240)


def _need_host_tools() -> None:
    missing = [t for t in ("gocryptfs", "fusermount3") if shutil.which(t) is None]
    if missing or not Path("/dev/fuse").exists():
        pytest.fail(
            f"the labstack service tests need {', '.join(missing) or '/dev/fuse'}: "
            "apt-get install gocryptfs fuse3 (and run where /dev/fuse exists)"
        )


@pytest.fixture
def stack(lab: Any, tmp_path: Path) -> Iterator[Stack]:
    st = Stack.for_lab(lab, tmp_path / "stack")
    try:
        yield st
    finally:
        st.cleanup()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


# Outputs for which the FAQ knowledge base (owned by the lead) does not rank the specific entry first: the entry id
# and the one that outranks it. Reported; asserted as they are, so a change of the knowledge base shows up here.
KNOWN_FAQ_GAPS: dict[str, str] = {}  # expected id -> the id that still outranks it (none left)


def _assert_faq(service: str, output: str, rc: int, expected: str) -> None:
    ranked = ranked_faqs(service, output, rc)
    want = [KNOWN_FAQ_GAPS[expected], expected] if expected in KNOWN_FAQ_GAPS else [expected]
    got = [faq_id for faq_id, _ in ranked[: len(want)]]
    assert got == want, f"FAQ for {service}: expected {want}, ranked {ranked}\n{output}"


def _secrets(stack: Stack, lab: Any) -> list[str]:
    c = stack.creds
    return [c["oss_access_key_secret"], c["oss_sts_access_key_secret"], c["oss_sts_token"], lab.demo.password]


# --------------------------------------------------------------------------------------------- healthy path


def test_healthy_stack_end_to_end(stack: Stack, lab: Any) -> None:
    _need_host_tools()
    aa = stack.start("attestation-agent", CAI_LAB_ATTESTER="sample")
    oss = stack.start("oss")
    wait_until(lambda: stack.path("aa.sock").exists(), 15, "the AA socket", aa)
    wait_until(lambda: stack.path("cipher.ready").exists(), 15, "cipher.ready", oss)
    assert (stack.path("cipher") / "gocryptfs.conf").is_file()
    uploaded = sorted(p.relative_to(lab.demo.cipher_dir) for p in lab.demo.cipher_dir.rglob("*") if p.is_file())
    fetched = sorted(p.relative_to(stack.path("cipher")) for p in stack.path("cipher").rglob("*") if p.is_file())
    assert fetched == uploaded

    cdh = stack.start("confidential-data-hub")
    wait_until(lambda: stack.path("model.key").exists(), 20, "model.key", cdh)
    key = stack.path("model.key")
    assert key.stat().st_mode & 0o777 == 0o400
    assert key.read_bytes().decode() == lab.demo.password

    cachefs = stack.start("cachefs")
    cfg = stack.path("mount") / "config.json"
    wait_until(lambda: is_mounted(stack.path("mount")) and cfg.is_file(), 30, "the gocryptfs mount", cachefs)
    assert json.loads(cfg.read_text()) == json.loads((lab.demo.model_dir / "config.json").read_text())

    tng = stack.start("tng")
    wait_until(lambda: stack.path("tng.ready").exists(), 20, "tng.ready", tng)

    port = _free_port()
    model_arg = str(stack.path("mount")) + "/"
    inf = stack.start(
        "inference", f"--model={model_arg}", "--trust-remote-code", "--port", str(port), CAI_LAB_DEVICE="cpu"
    )
    wait_until(lambda: "Uvicorn running on" in inf.output, 20, "uvicorn's ready line", inf)
    assert f"Uvicorn running on http://127.0.0.1:{port}" in inf.output
    status, models = _http("GET", f"http://127.0.0.1:{port}/v1/models")
    assert status == 200 and [m["id"] for m in models["data"]] == [model_arg]
    status, _ = _http("GET", f"http://127.0.0.1:{port}/health")
    assert status == 200
    status, done = _http(
        "POST", f"http://127.0.0.1:{port}/v1/completions", {"model": model_arg, "prompt": "Hi", "max_tokens": 8}
    )
    assert status == 200 and done["choices"][0]["text"]
    again = _http(
        "POST", f"http://127.0.0.1:{port}/v1/completions", {"model": model_arg, "prompt": "Hi", "max_tokens": 8}
    )[1]
    assert again["choices"][0]["text"] == done["choices"][0]["text"]  # deterministic
    status, chat = _http(
        "POST",
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"model": model_arg, "messages": [{"role": "user", "content": "Hi"}]},
    )
    assert status == 200 and chat["choices"][0]["message"]["role"] == "assistant"
    status, err = _http("POST", f"http://127.0.0.1:{port}/v1/completions", {"model": "/tmp/model", "prompt": "Hi"})
    assert status == 404 and err["message"] == "The model `/tmp/model` does not exist."
    assert err["type"] == "NotFoundError"
    assert '"GET /v1/models HTTP/1.1" 200 OK' in inf.output

    for svc in (inf, tng, cachefs, cdh, oss, aa):
        # gocryptfs unmounts on SIGTERM and exits 0, or 15 (exitcodes.SigInt) when its signal handler wins the race
        # with the serve loop; cachefs passes on whichever it was
        allowed = {0, 15} if svc is cachefs else {0}
        rc = svc.stop()
        assert rc in allowed, f"{svc.name} did not stop cleanly ({rc}):\n{svc.output}"
    assert not is_mounted(stack.path("mount")), "SIGTERM must unmount the model"
    assert not stack.path("aa.sock").exists()
    everything = "\n".join(s.output for s in stack.started)
    for secret in _secrets(stack, lab):
        assert secret not in everything, "a secret reached a service log"
    assert "No TEE platform detected" in aa.output  # the real AA's warning before the sample fallback


# --------------------------------------------------------------------------------------------- oss


@pytest.mark.parametrize(
    ("fault", "env", "code", "line", "faq"),
    [
        ("oss-bad-signature", {}, "SignatureDoesNotMatch", "Invalid Credentials(host=", "oss-signature-mismatch"),
        (None, {"MODEL_OSS_SECRET_ACCESS_KEY": "not-the-secret-at-all"}, "SignatureDoesNotMatch", "Invalid Credentials(host=", "oss-signature-mismatch"),
        (None, {"MODEL_OSS_ACCESS_KEY_ID": "LTAI5tNoSuchKeyId000"}, "InvalidAccessKeyId", "Access Key Id you provided does not exist", "oss-invalid-access-key"),
        ("oss-access-denied", {}, "AccessDenied", "Invalid Credentials(host=", "oss-access-denied"),
        (None, {"MODEL_OSS_BUCKET_PATH": "no-such-lab-bucket:/demo-gocryptfs/"}, "The specified bucket does not exist.", "Bucket not found(host=", "oss-no-such-bucket"),
        ("oss-skew", {}, "RequestTimeTooSkewed", "Invalid Credentials(host=", "oss-clock-skew"),
        (None, {"MODEL_OSS_ENDPOINT": "http://127.0.0.1:9"}, "CURLE_COULDNT_CONNECT", "Unable to connect(host=http://127.0.0.1:9", "oss-unreachable"),
    ],
)  # fmt: skip
def test_oss_failures(
    stack: Stack, lab: Any, fault: str | None, env: dict[str, str], code: str, line: str, faq: str
) -> None:
    if fault:
        lab.faults.set(fault, True)
    rc, out = stack.run("oss", **env)
    assert rc == 101, out
    assert code in out and line in out, out
    assert "OSS mount failed with stderr: ossfs: Failed to check bucket" in out
    assert "failed to secure mount: SecureMount(AliyunOssError(OssfsMountFailed))" in out
    assert not stack.path("cipher.ready").exists()
    _assert_faq("oss", out, rc, faq)
    for secret in _secrets(stack, lab):
        assert secret not in out


def test_oss_sts_token(stack: Stack, lab: Any) -> None:
    c = stack.creds
    sts = {
        "MODEL_OSS_ACCESS_KEY_ID": c["oss_sts_access_key_id"],
        "MODEL_OSS_SECRET_ACCESS_KEY": c["oss_sts_access_key_secret"],
        "MODEL_OSS_SESSION_TOKEN": c["oss_sts_token"],
    }
    svc = stack.start("oss", **sts)
    wait_until(lambda: stack.path("cipher.ready").exists(), 15, "cipher.ready with STS credentials", svc)
    assert svc.stop() == 0
    stack.path("cipher.ready").unlink()
    lab.faults.set("oss-token-expired", True)
    rc, out = stack.run("oss", **sts)
    assert rc == 101 and "SecurityTokenExpired" in out and "security token you provided has expired" in out, out
    _assert_faq("oss", out, rc, "oss-token-expired")
    for secret in _secrets(stack, lab):
        assert secret not in out


# --------------------------------------------------------------------------------------------- AA + CDH


def _start_aa(stack: Stack) -> None:
    aa = stack.start("attestation-agent", CAI_LAB_ATTESTER="sample")
    wait_until(lambda: stack.path("aa.sock").exists(), 15, "the AA socket", aa)


@pytest.mark.parametrize(
    ("fault", "env", "needles", "faq"),
    [
        ("kbs-resource-missing", {}, ["PluginInternalError", "KbsInternalError"], "kbs-resource-missing"),
        ("kbs-policy-deny", {}, ["PolicyDeny", "Access denied by policy"], "kbs-policy-deny"),
        ("kbs-version-mismatch", {}, ["KBS Client Protocol Version Mismatch: expect =", "RCAR handshake failed"], "kbs-protocol-mismatch"),
        ("gateway-backend-down", {}, ["Failed to forward request to KBS"], "trustee-backend-down"),
        (None, {"TRUSTEE_URL": "http://127.0.0.1:9/trustee/"}, ["RCAR handshake retried 5 times", "ConnectionRefused"], "trustee-unreachable"),
        (None, {"TRUSTEE_URL": "127.0.0.1:9/trustee"}, ["kind: Builder", "RelativeUrlWithoutBase"], "trustee-bad-url"),
    ],
)  # fmt: skip
def test_cdh_failures(
    stack: Stack, lab: Any, fault: str | None, env: dict[str, str], needles: list[str], faq: str
) -> None:
    _start_aa(stack)
    if fault:
        lab.faults.set(fault, True)
    rc, out = stack.run("confidential-data-hub", **env)
    assert rc == 101, out
    assert "thread 'main' panicked at" in out and "failed to get resource, " in out
    for n in needles:
        assert n in out, f"{n!r} missing from:\n{out}"
    assert "Tried 1 times... failed to get resource:" in out
    assert not stack.path("model.key").exists()
    _assert_faq("confidential-data-hub", out, rc, faq)
    assert lab.demo.password not in out


def test_cdh_without_attestation_agent(stack: Stack, lab: Any) -> None:
    rc, out = stack.run("confidential-data-hub")
    assert rc == 101
    assert "kbs client initialization failed" in out and "ttrpc connect failed Nix error: ENOENT" in out, out
    _assert_faq("confidential-data-hub", out, rc, "aa-unreachable")


def test_aa_without_tee_or_sample_switch(stack: Stack) -> None:
    rc, out = stack.run("attestation-agent")
    assert rc == 1 and "WARN attester: No TEE platform detected. Sample Attester will be used." in out, out
    assert "Error: start AA" in out
    _assert_faq("attestation-agent", out, rc, "tee-not-detected")


# --------------------------------------------------------------------------------------------- tng


def test_tng_failures(stack: Stack, lab: Any) -> None:
    """The real tng binary's own errors (the service passes its output through); Trustee faults show on the server
    only in the passport model (background check: the client asks the AS, see test_tng_real.py)."""
    rc, out = stack.run("tng")
    assert rc == 1 and "ERROR tng: error=Invalid parameter" in out, out
    assert f'AA socket file "{stack.path("aa.sock")}" not found' in out
    _assert_faq("tng", out, rc, "tng-aa-unreachable")

    rc, out = stack.run("tng", MODEL_SERVICE_PORT="80a")
    assert rc == 1 and "ERROR tng: error=Failed to load config" in out, out
    assert "data did not match any variant of untagged enum" in out  # serde's words, from the binary
    _assert_faq("tng", out, rc, "tng-config-invalid")
    rc, out = stack.run("tng", MODEL_SERVICE_PORT="70000")
    assert rc == 1 and "ERROR tng: error=Failed to load config" in out, out

    rc, out = stack.run("tng", CAI_LAB_TNG_PORT=None)
    assert rc == 1 and "CAI_LAB_TNG_PORT is not set" in out and "docker-compose.lab.yml" in out, out

    _start_aa(stack)
    passport = {"CAI_LAB_TNG_MODEL": "passport"}
    rc, out = stack.run("tng", TRUSTEE_POLICY="no-such-policy", **passport)
    assert rc == 1 and "ERROR tng: error=Failed to generate new cert" in out, out
    assert "Attestation service /attestation returned HTTP error (api_version: V1_6_0): status=500" in out
    assert "policy no-such-policy not found" in out  # the lab AS's own answer
    _assert_faq("tng", out, rc, "tng-attestation-rejected")

    lab.faults.set("gateway-backend-down", True)
    rc, out = stack.run("tng", **passport)
    assert rc == 1 and "Failed to forward request to Attestation Service" in out and "status=500" in out, out
    _assert_faq("tng", out, rc, "trustee-backend-down")
    lab.faults.set("gateway-backend-down", False)

    rc, out = stack.run("tng", TRUSTEE_URL="http://127.0.0.1:9/trustee", **passport)
    assert rc == 1 and "Failed to send /attestation HTTP request to AS (api_version: V1_6_0)" in out, out
    assert "Connection refused (os error 111)" in out
    _assert_faq("tng", out, rc, "trustee-unreachable")
    assert not stack.path("tng.ready").exists()


# --------------------------------------------------------------------------------------------- cachefs


def _stage_inputs(stack: Stack, lab: Any, key: bytes, *, nested: bool = False) -> None:
    dest = stack.path("cipher") / "inner" if nested else stack.path("cipher")
    shutil.copytree(lab.demo.cipher_dir, dest)
    stack.path("model.key").write_bytes(key)
    stack.path("cipher.ready").write_text("1\n")


def test_cachefs_wrong_key(stack: Stack, lab: Any) -> None:
    _need_host_tools()
    _stage_inputs(stack, lab, b"definitely-not-the-password")
    rc, out = stack.run("cachefs")
    assert rc == 12 and "Password incorrect." in out, out  # the real gocryptfs's own exit code and message
    assert not is_mounted(stack.path("mount"))
    _assert_faq("cachefs", out, rc, "model-password-wrong")
    assert "definitely-not-the-password" not in out


def test_cachefs_nested_layout(stack: Stack, lab: Any) -> None:
    _need_host_tools()
    _stage_inputs(stack, lab, lab.demo.password.encode(), nested=True)
    rc, out = stack.run("cachefs")
    assert rc == 11 and "gocryptfs.conf: no such file or directory" in out, out
    _assert_faq("cachefs", out, rc, "model-not-gocryptfs")
    assert lab.demo.password not in out


def test_cachefs_sam_and_waiting(stack: Stack, lab: Any) -> None:
    _stage_inputs(stack, lab, lab.demo.password.encode())
    rc, out = stack.run("cachefs", MODEL_ENCRYPTION_METHOD="sam")
    assert rc == 1 and "does not support the Sam format" in out and "not a Sam package" in out, out
    stack.path("cipher.ready").unlink()
    rc, out = stack.run("cachefs", CAI_LAB_WAIT_S="1")
    assert rc == 1 and "waiting for" in out and "cipher.ready" in out and "gave up after 1 s" in out, out


# --------------------------------------------------------------------------------------------- inference


def test_inference_failures(stack: Stack, lab: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty-model"
    empty.mkdir()
    port = str(_free_port())
    rc, out = stack.run("inference", f"--model={empty}/", "--port", port, CAI_LAB_DEVICE="cpu")
    assert rc == 1 and f"ValueError: Invalid repository ID or local directory specified: '{empty}/'." in out, out
    assert "The above exception was the direct cause of the following exception:" in out
    _assert_faq("inference", out, rc, "model-layout-nested")

    no_weights = tmp_path / "no-weights"
    no_weights.mkdir()
    shutil.copy(lab.demo.model_dir / "config.json", no_weights / "config.json")
    rc, out = stack.run("inference", f"--model={no_weights}", "--port", port, CAI_LAB_DEVICE="cpu")
    assert rc == 1 and f"RuntimeError: Cannot find any model weights with `{no_weights}`" in out, out
    _assert_faq("inference", out, rc, "model-files-missing")

    if not Path("/dev/nvidiactl").exists():
        rc, out = stack.run("inference", f"--model={lab.demo.model_dir}", "--port", port, CAI_LAB_DEVICE=None)
        assert rc == 1 and "RuntimeError: Failed to infer device type" in out, out
        _assert_faq("inference", out, rc, "gpu-missing")

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        taken = str(busy.getsockname()[1])
        rc, out = stack.run("inference", f"--model={lab.demo.model_dir}", "--port", taken, CAI_LAB_DEVICE="cpu")
    assert rc == 1 and "[Errno 98] error while attempting to bind on address" in out, out
    _assert_faq("inference", out, rc, "inference-unreachable")


# --------------------------------------------------------------------------------------------- env


@pytest.mark.parametrize(
    ("service", "var"),
    [
        ("oss", "MODEL_OSS_ENDPOINT"),
        ("confidential-data-hub", "MODEL_KEY_ID"),
        ("tng", "MODEL_SERVICE_PORT"),
        ("cachefs", "MODEL_MOUNT_POINT"),
    ],
)
def test_missing_env(stack: Stack, service: str, var: str) -> None:
    rc, out = stack.run(service, **{var: None})
    assert rc == 1
    assert f"{service}: environment variable {var} is not set" in out, out
    assert "Traceback" not in out


def test_dispatcher_rejects_unknown_service(stack: Stack) -> None:
    rc, out = stack.run("no-such-service")
    assert rc == 2 and "unknown service 'no-such-service'" in out
