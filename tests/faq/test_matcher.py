"""The matcher on whole logs: ranking, evidence, confidence, the unknown finding, determinism."""

from __future__ import annotations

import itertools
import textwrap

import pytest

from cai_tui.faq import Finding, Observation, lines_from_text, load_kb, match, service_of
from cai_tui.faq.matcher import MAX_LINES, telling_lines

KB = load_kb()


def logs(text: str) -> list[tuple[str | None, str]]:
    return lines_from_text(textwrap.dedent(text).strip("\n"))


def assert_honest(findings: list[Finding]) -> None:
    """High confidence only with a log line or a check behind it; unknown is never confident."""
    for f in findings:
        direct = [e for e in f.evidence if not e.source.startswith("docker inspect")]  # state evidence is indirect
        if f.confidence == "high":
            assert direct and f.faq_id != "unknown", f
        if not direct or f.faq_id == "unknown":
            assert f.confidence == "low", f


CACHEFS_LOG = """\
2025-03-01T08:00:00.100Z [INFO  confidential_data_hub] Confidential Data Hub starts to listen to request: unix:///run/cdh.sock
2025-03-01T08:00:00.200Z [INFO  confidential_data_hub::storage] secure mount: volume_type alibaba-cloud-oss
2025-03-01T08:00:01.300Z [INFO  kbs_protocol::client::rcar_client] get challenge, nonce: …
2025-03-01T08:00:02.400Z [ERROR confidential_data_hub::storage::volume_type::aliyun] gocryptfs failed with stderr: Password incorrect.
2025-03-01T08:00:02.401Z Error: Secure Mount failed: Error when mounting Aliyun OSS: Gocryptfs decryption mount failed
"""

CDH_UNREACHABLE_LOG = "\n".join(
    [
        "2025-03-01T08:00:00Z [INFO  confidential_data_hub] get-resource kbs:///default/aliyun/model-decryption-key",
        *(
            f"2025-03-01T08:00:0{i}Z [WARN  kbs_protocol::client::rcar_client] RCAR handshake failed: reqwest::Error "
            '{ kind: Request, url: "http://alb-x.cn-beijing.alb.aliyuncsslb.com/trustee/kbs/v0/auth", source: '
            'hyper_util::client::legacy::Error(Connect, ConnectError("tcp connect error", Os { code: 110, kind: '
            f"TimedOut }})) }}, retry {i}..."
            for i in range(1, 5)
        ),
        "2025-03-01T08:00:09Z Error: Get Resource failed",
        "2025-03-01T08:00:09Z Caused by:",
        "2025-03-01T08:00:09Z     0: RCAR handshake failed: Unable to get token. RCAR handshake retried 5 times.",
    ]
)


def test_cachefs_wrong_password():
    obs = Observation(
        container="cai-docker-cachefs-1",
        state="exited",
        health="unhealthy",
        exit_code=1,
        log_lines=lines_from_text(CACHEFS_LOG),
        check_results={"kms.secret_matches": "fail"},
    )
    findings = match(obs, KB)
    top = findings[0]
    assert top.faq_id == "model-password-wrong" and top.confidence == "high"
    assert top.evidence[0].line.endswith("gocryptfs failed with stderr: Password incorrect.")
    assert top.evidence[0].source == "docker logs cai-docker-cachefs-1"
    assert top.evidence[0].time == "2025-03-01T08:00:02.400Z"
    assert ("kms.secret_matches: fail", "check kms.secret_matches") in [(e.line, e.source) for e in top.evidence]
    assert "KMS" in top.fix.en and "KMS" in top.fix.zh and "CAI-2.6" in top.fix.en
    # the seed's generic cachefs entry follows, backed by the wrapper line and the state
    assert findings[1].faq_id == "cai-cachefs-failed"
    assert "Gocryptfs decryption mount failed" in findings[1].evidence[0].line
    assert all(f.faq_id != "unknown" for f in findings)
    assert_honest(findings)


def test_cdh_cannot_reach_trustee():
    obs = Observation(container="root-confidential-data-hub-1", state="exited", exit_code=1,
                      log_lines=lines_from_text(CDH_UNREACHABLE_LOG))  # fmt: skip
    findings = match(obs, KB)
    assert [f.faq_id for f in findings[:2]] == ["trustee-unreachable", "cai-cdh-failed"]
    top = findings[0]
    assert top.confidence == "high"
    assert "retry 4" in top.evidence[0].line  # the newest of equally telling lines
    assert top.evidence[0].time == "2025-03-01T08:00:04Z"
    assert "TRUSTEE_URL" in top.fix.en and "CAI-4.2" in top.fix.zh
    assert_honest(findings)


def test_protocol_mismatch_inside_a_handshake_line_beats_unreachable():
    line = (
        'RCAR handshake failed: KBS request unauthorized, ErrorInformation { error_type: "https://github.com/'
        'confidential-containers/kbs/errors/AttestationError", detail: "Attestation error: KBS Client Protocol '
        'Version Mismatch: expect =0.4.0 while the request is 0.1.0" }, retry 1...'
    )
    findings = match(Observation(service="confidential-data-hub", log_lines=[(None, "INFO start"), (None, line)]), KB)
    ids = [f.faq_id for f in findings]
    assert ids[0] == "kbs-protocol-mismatch"
    assert "trustee-unreachable" in ids and findings[ids.index("trustee-unreachable")].score < findings[0].score
    assert_honest(findings)


def test_oss_mount_access_denied_names_the_specific_cause():
    text = """\
    [INFO  confidential_data_hub::storage] mounting oss bucket conf-ai:/qwen2.5-3b-gocryptfs/
    [ERROR confidential_data_hub::storage::volume_type::aliyun] OSS mount failed with stderr: ossfs: Failed to check bucket and directory for mount point : Invalid Credentials(host=https://oss-cn-beijing-internal.aliyuncs.com, message=AccessDenied)
    Error: Secure Mount failed: Error when mounting Aliyun OSS: Failed to mount oss
    """
    findings = match(Observation(container="cai-docker-oss-1", health="unhealthy", log_lines=logs(text)), KB)
    assert findings[0].faq_id == "oss-access-denied" and findings[0].confidence == "high"
    assert findings[1].faq_id == "cai-oss-failed"
    assert_honest(findings)


@pytest.mark.parametrize(
    ("service", "text", "expected"),
    [
        (
            "inference",
            """\
            INFO 03-01 08:00:00 api_server.py:585] vLLM API server version 0.6.3
            INFO 03-01 08:00:05 model_runner.py:1056] Loading model weights took 5.79 GB
            Traceback (most recent call last):
              File "/usr/lib/python3/dist-packages/vllm/worker/worker.py", line 223, in determine_num_available_blocks
            torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.50 GiB. GPU 0 has a total capacity of 23.5 GiB
            ERROR 03-01 08:00:09 engine.py:160] Engine process failed to start
            """,
            "cuda-oom",
        ),
        (
            "tng-client",
            """\
            INFO tng: Starting TNG instance
            INFO tng::tunnel::ingress: listening on 127.0.0.1:41000
            ERROR tng::tunnel: failed to establish tunnel: verify failed: EAR status is not affirming: got contraindicated for tdx, trustworthiness: {…}
            INFO tng: connection closed
            """,
            "tng-attestation-rejected",
        ),
        (
            "host",
            """\
            [  812.100] pci 0000:01:00.0: [10de:2335] type 00 class 0x030200
            [  812.313] vfio-pci 0000:01:00.0: probe with driver vfio-pci failed with error -22
            [  812.400] audit: type=1130 audit(…): pid=1 uid=0 msg='unit=systemd-tmpfiles-clean'
            """,
            "vfio-probe-failed",
        ),
        (
            "tng",
            """\
            INFO tng: Starting TNG instance
            WARN tng: retrying attestation
            ERROR tng: Failed to connect to Attestation Agent ttrpc endpoint
            """,
            "tng-aa-unreachable",
        ),
        (
            "compose",
            """\
             Container cai-docker-attestation-agent-1  Healthy
             Container cai-docker-cachefs-1  Error
            dependency failed to start: container cai-docker-cachefs-1 is unhealthy
            """,
            "cai-container-unhealthy",
        ),
    ],
)
def test_whole_logs_rank_the_telling_line(service, text, expected):
    findings = match(Observation(service=service, log_lines=logs(text), log_source="captured log"), KB)
    assert findings[0].faq_id == expected
    assert findings[0].confidence == "high"
    assert findings[0].evidence[0].source == "captured log"
    assert_honest(findings)


def test_unrelated_log_gives_unknown_with_the_telling_lines():
    text = """\
    2025-03-01T08:00:00Z starting worker pool size=4
    2025-03-01T08:00:01Z loaded 12 plugins
    2025-03-01T08:00:02Z ERROR frobnicator exploded: quux not initialised
    2025-03-01T08:00:03Z heartbeat ok
    2025-03-01T08:00:04Z heartbeat ok
    2025-03-01T08:00:05Z retry budget exhausted, giving up
    2025-03-01T08:00:06Z shutting down
    """
    (only,) = match(Observation(container="cai-docker-tng-1", log_lines=logs(text)), KB)
    assert only.faq_id == "unknown" and only.confidence == "low"
    shown = [e.line for e in only.evidence]
    assert shown == [
        "ERROR frobnicator exploded: quux not initialised",
        "heartbeat ok",
        "retry budget exhausted, giving up",
        "shutting down",
    ]
    assert only.evidence[0].source == "docker logs cai-docker-tng-1"
    assert only.evidence[0].time == "2025-03-01T08:00:02Z"
    assert "cai-bug-reporter.sh" in only.fix.en and "cai-bug-reporter.sh" in only.fix.zh


def test_state_alone_is_low_and_the_lines_are_still_shown():
    text = "booting\nprocessing batch 7\nall done?\n"
    findings = match(Observation(container="cai-docker-tng-1", state="restarting", log_lines=logs(text)), KB)
    assert [f.faq_id for f in findings] == ["cai-tng-failed", "unknown"]
    assert findings[0].confidence == "low"
    assert findings[0].evidence[0].source == "docker inspect cai-docker-tng-1"
    assert [e.line for e in findings[1].evidence] == ["booting", "processing batch 7", "all done?"]
    assert_honest(findings)


def test_a_crash_loop_counts_as_restarting():
    obs = Observation(container="cai-docker-tng-1", state="running", restart_count=5)
    assert [f.faq_id for f in match(obs, KB)] == ["cai-tng-failed", "unknown"]
    obs = Observation(container="cai-docker-tng-1", state="running", restart_count=1)
    assert [f.faq_id for f in match(obs, KB)] == ["unknown"]


def test_exit_code_alone_points_at_the_right_entry_but_stays_low():
    findings = match(Observation(container="cai-docker-cachefs-1", state="exited", exit_code=12), KB)
    assert findings[0].faq_id == "model-password-wrong" and findings[0].confidence == "low"
    assert findings[0].evidence[0].line == "state: exited, exit code 12"
    assert not findings[0].has_direct_evidence
    assert findings[1].faq_id == "cai-cachefs-failed"
    assert findings[-1].faq_id == "unknown"
    assert findings[-1].evidence[0].line == "state: exited, exit code 12"  # no log lines: the state is shown
    assert_honest(findings)


def test_a_check_outranks_the_bare_state():
    obs = Observation(
        container="cai-docker-cachefs-1", health="unhealthy", check_results={"kms.secret_matches": "fail"}
    )
    findings = match(obs, KB)
    assert findings[0].faq_id == "model-password-wrong" and findings[0].confidence == "medium"
    assert findings[0].has_direct_evidence and findings[0].primary == findings[0].evidence[0]
    assert findings[0].evidence[0].source == "check kms.secret_matches"
    assert findings[1].faq_id == "cai-cachefs-failed" and findings[1].confidence == "low"
    assert all(f.faq_id != "unknown" for f in findings)


def test_never_confident_without_a_log_line_or_a_check():
    seen = set()
    for service, state, health, exit_code in itertools.product(
        [None, "oss", "cachefs", "confidential-data-hub", "tng", "attestation-agent", "inference", "host", "guest"],
        [None, "running", "exited", "restarting", "dead"],
        [None, "healthy", "unhealthy"],
        [None, 0, 1, 6, 9, 11, 12, 19, 22, 23, 137],
    ):
        findings = match(Observation(service=service, state=state, health=health, exit_code=exit_code), KB)
        assert all(f.confidence == "low" for f in findings), (service, state, health, exit_code)
        assert findings[-1].faq_id == "unknown"
        assert_honest(findings)
        seen.update(f.faq_id for f in findings)
    # the states did match something: the seed's container entries and the exit-code entries
    assert {"cai-oss-failed", "cai-cachefs-failed", "model-password-wrong", "model-not-gocryptfs"} <= seen


def test_a_healthy_running_container_with_no_logs_is_unknown():
    (only,) = match(Observation(container="cai-docker-oss-1", state="running", health="healthy", exit_code=0), KB)
    assert only.faq_id == "unknown"
    assert only.evidence[0].line == "state: running, health: healthy, exit code 0"


def test_state_patterns_only_count_for_their_service():
    findings = match(Observation(service="inference", state="exited", exit_code=12), KB)
    assert [f.faq_id for f in findings] == ["unknown"]  # exit 12 means a wrong password only for cachefs


def test_health_log_lines_are_matched_too():
    obs = Observation(
        container="cai-docker-attestation-agent-1",
        health="unhealthy",
        health_log=[("2025-03-01T08:00:00Z", "ls: cannot access '/dev/tdx_guest': No such file or directory")],
    )
    top = match(obs, KB)[0]
    assert top.faq_id == "tee-not-detected" and top.confidence == "high"
    assert top.evidence[0].source == "health log"


def test_service_boost_breaks_a_tie_between_areas():
    # "No space left on device" (disk) vs a plain log: the boost shows in the score for the entry's own services
    line = [(None, "write /tmp/model/x: No space left on device")]
    mine = match(Observation(service="cachefs", log_lines=line), KB)[0]
    other = match(Observation(service="tng", log_lines=line), KB)[0]
    assert mine.faq_id == other.faq_id == "disk-too-small"
    assert mine.score > other.score


def test_equal_scores_are_never_high(tmp_path):
    entry = """\
  - id: {id}
    title: {{en: T, zh: 标题}}
    patterns: [{{log: 'same thing failed'}}]
    cause: {{en: C, zh: 原因}}
    fix: {{en: F (CAI-4.1), zh: 办法（CAI-4.1）}}
    source: {{kind: upstream, ref: x/y}}
"""
    (tmp_path / "a.yaml").write_text("entries:\n" + entry.format(id="alpha") + entry.format(id="beta"))
    kb = load_kb(tmp_path)
    findings = match(Observation(log_lines=[(None, "the same thing failed")]), kb)
    assert [(f.faq_id, f.confidence) for f in findings] == [("alpha", "medium"), ("beta", "medium")]


def test_deterministic_and_limited():
    obs = Observation(service="cachefs", state="exited", exit_code=12, log_lines=lines_from_text(CACHEFS_LOG))
    first = match(obs, KB)
    assert match(obs, KB) == first
    assert len(match(obs, KB, limit=1)) == 1
    shuffled = type(KB)(tuple(reversed(KB.entries)))
    assert match(obs, shuffled) == first


def test_ansi_colours_and_overlong_lines():
    coloured = "\x1b[31mERROR\x1b[0m tng: \x1b[1mEAR status is not affirming\x1b[0m: got warning"
    top = match(Observation(service="tng-client", log_lines=[(None, coloured)]), KB)[0]
    assert top.faq_id == "tng-attestation-rejected"
    assert top.evidence[0].line == "ERROR tng: EAR status is not affirming: got warning"
    tail = "x" * 100_000 + " gocryptfs: Password incorrect"
    top = match(Observation(log_lines=[(None, tail)]), KB)[0]
    assert top.faq_id == "model-password-wrong"  # the tail of an overlong line is kept
    assert len(top.evidence[0].line) < 5000 and top.evidence[0].line.endswith("Password incorrect")
    middle = "x" * 50_000 + " Password incorrect " + "y" * 50_000
    assert match(Observation(log_lines=[(None, middle)]), KB)[0].faq_id == "unknown"  # bounded work per line


def test_only_the_newest_lines_are_matched():
    old = [(None, "gocryptfs failed with stderr: Password incorrect.")]
    filler = [(None, f"INFO line {i}") for i in range(MAX_LINES)]
    assert match(Observation(service="cachefs", log_lines=old + filler), KB)[0].faq_id == "unknown"
    assert match(Observation(service="cachefs", log_lines=filler + old), KB)[0].faq_id == "model-password-wrong"


def test_telling_lines_keep_order_and_cap():
    lines = [(None, f"step {i} failed") for i in range(20)] + [(None, "bye")]
    shown = [e.line for e in telling_lines(Observation(log_lines=lines))]
    assert shown == [f"step {i} failed" for i in range(12, 20)] + ["bye"]


@pytest.mark.parametrize(
    ("container", "service"),
    [
        ("cai-docker-cachefs-1", "cachefs"),
        ("/root-confidential-data-hub-1", "confidential-data-hub"),
        ("cai-docker-attestation-agent-1", "attestation-agent"),
        ("root-tng-1", "tng"),
        ("myproj-inference-2", "inference"),
        ("oss", "oss"),
        ("vllm", None),
        (None, None),
    ],
)
def test_service_from_container_name(container, service):
    assert service_of(container) == service
    assert Observation(container=container).resolved_service == service


def test_lines_from_text_splits_docker_timestamps():
    text = "2025-03-01T08:00:00.123456789Z hello world\nno stamp here\n2025-03-01T08:00:01+08:00 tz line"
    assert lines_from_text(text) == [
        ("2025-03-01T08:00:00.123456789Z", "hello world"),
        (None, "no stamp here"),
        ("2025-03-01T08:00:01+08:00", "tz line"),
    ]


def test_the_newest_line_is_the_evidence_among_equal_patterns():
    lines = [
        ("t1", "<Code>AccessDenied</Code>"),
        ("t2", "INFO retrying"),
        ("t3", "You have no right to access this object because of bucket acl."),
        ("t4", "INFO giving up"),
    ]
    top = match(Observation(service="oss", log_lines=lines), KB)[0]
    assert top.faq_id == "oss-access-denied"
    assert (top.evidence[0].time, top.evidence[0].line) == ("t3", lines[2][1])
    assert top.score == pytest.approx((10 + 0.5) * 1.3)  # best pattern, one more distinct pattern, service boost
