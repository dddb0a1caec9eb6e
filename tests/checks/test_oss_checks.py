"""The OSS checks against the lab OSS (real oss2), healthy, with each OSS fault, and the layout mistakes."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from cai_tui.checks.oss import evaluate_policy
from cai_tui.gocryptfs import encrypt_tree

from .checklib import assert_no_secrets, expect, lab_recipe, lab_secrets, outcome_text, run, secret_file

OSS = ["oss.*"]


def _sts(lab: Any) -> Any:
    state = lab.state_dir

    def edit(d: dict[str, Any]) -> None:
        d["answers"]["oss"].update(
            access_key_id=f"file:{state / 'oss_sts_access_key_id'}",
            access_key_secret=f"file:{state / 'oss_sts_access_key_secret'}",
            session_token=f"file:{state / 'oss_sts_token'}",
        )

    return edit


def _upload_tree(bucket: Any, root: Path, prefix: str) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            bucket.put_object(prefix + path.relative_to(root).as_posix(), path.read_bytes())


def test_healthy_lab_passes_every_oss_check(policy_lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(policy_lab, tmp_path), OSS)
    assert set(out) == {"oss.endpoint", "oss.credentials", "oss.bucket", "oss.model_prefix", "oss.bucket_policy"}
    for cid in out:
        expect(out, cid, "pass")
    prefix = out["oss.model_prefix"].result
    cipher_files = policy_lab.demo.cipher_files()
    assert prefix.data["objects"] == len(cipher_files)
    assert prefix.data["size"] == sum(p.stat().st_size for _k, p in cipher_files)
    assert out["oss.endpoint"].result.data["effective_endpoint"] == policy_lab.oss_endpoint
    assert out["oss.bucket"].result.data["region"] == "cn-lab"
    assert out["oss.bucket_policy"].result.data["allowing"] == [1]
    assert_no_secrets(outcome_text(out), lab_secrets(policy_lab))


def test_sts_credentials_pass(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path, _sts(lab)), ["oss.credentials", "oss.model_prefix"])
    res = expect(out, "oss.credentials", "pass")
    assert "STS token" in res.summary
    expect(out, "oss.model_prefix", "pass")
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


@pytest.mark.parametrize(
    ("fault", "check_id", "want_faq", "sts"),
    [
        ("oss-access-denied", "oss.bucket", "oss-access-denied", False),
        ("oss-no-such-bucket", "oss.bucket", "oss-no-such-bucket", False),
        ("oss-bad-signature", "oss.credentials", "oss-signature-mismatch", False),
        ("oss-skew", "oss.credentials", "oss-clock-skew", False),
        ("oss-token-expired", "oss.credentials", "oss-token-expired", True),
        ("oss-stall-body", "oss.model_prefix", "oss-unreachable", False),
    ],
)
def test_each_oss_fault_fails_the_right_check(
    lab: Any, tmp_path: Path, fault: str, check_id: str, want_faq: str, sts: bool
) -> None:
    recipe = lab_recipe(lab, tmp_path, _sts(lab) if sts else None)
    lab.faults.set(fault, True)
    out = run(recipe, OSS, timeout=2.0)
    expect(out, "oss.endpoint", "pass")
    res = expect(out, check_id, "fail", want_faq)
    order = ["oss.credentials", "oss.bucket", "oss.model_prefix"]
    for earlier in order[: order.index(check_id)]:
        expect(out, earlier, "pass")  # the fault shows up where it belongs, not earlier
    for later in order[order.index(check_id) + 1 :]:
        expect(out, later, "skip")
    if fault == "oss-skew":
        assert "RequestTime" in res.evidence[-1].observed and "ServerTime" in res.evidence[-1].observed
    if fault == "oss-stall-body":
        assert "gocryptfs.conf" in res.summary and out[check_id].duration_ms < 2000
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


def test_unknown_access_key_id(lab: Any, tmp_path: Path) -> None:
    ref = secret_file(tmp_path, "ak", "LTAI5tNoSuchKeyInTheLab00")
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["oss"].update(access_key_id=ref)), OSS)
    res = expect(out, "oss.credentials", "fail", "oss-invalid-access-key")
    assert "InvalidAccessKeyId" in res.summary
    assert "LTAI5tNoSuchKeyInTheLab00" not in outcome_text(out)  # the recipe's (wrong) key is a secret too


def test_internal_endpoint_from_outside_uses_the_upload_endpoint(lab: Any, tmp_path: Path) -> None:
    """An -internal endpoint that does not resolve here is explained, and the checks go on via upload_endpoint.

    The name is in the reserved .invalid TLD: it never reaches a DNS server."""

    def edit(d: dict[str, Any]) -> None:
        d["answers"]["oss"].update(endpoint="https://oss-cn-lab-internal.invalid", upload_endpoint=lab.oss_endpoint)

    out = run(lab_recipe(lab, tmp_path, edit), OSS)
    res = expect(out, "oss.endpoint", "warn", "oss-unreachable")
    assert "only resolves inside an Alibaba Cloud VPC" in res.summary
    assert res.data["effective_endpoint"] == lab.oss_endpoint
    for cid in ("oss.credentials", "oss.bucket", "oss.model_prefix"):
        expect(out, cid, "pass")


def test_internal_endpoint_without_a_public_one(lab: Any, tmp_path: Path) -> None:
    edit = lambda d: d["answers"]["oss"].update(endpoint="https://oss-cn-lab-internal.invalid")  # noqa: E731
    out = run(lab_recipe(lab, tmp_path, edit), OSS)
    res = expect(out, "oss.endpoint", "fail", "oss-unreachable")
    assert "only resolves inside an Alibaba Cloud VPC" in res.summary
    assert "oss-cn-lab.invalid" in res.summary  # the public twin was tried too
    assert "upload_endpoint" in res.fix.text
    expect(out, "oss.credentials", "skip")


def test_unresolvable_and_refused_endpoints(lab: Any, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens once the socket is closed
    for endpoint, words in (
        ("https://oss-nowhere.invalid", "does not resolve"),
        (f"http://127.0.0.1:{closed}", "connection refused"),
    ):
        out = run(lab_recipe(lab, tmp_path, lambda d, e=endpoint: d["answers"]["oss"].update(endpoint=e)), OSS)
        res = expect(out, "oss.endpoint", "fail", "oss-unreachable")
        assert words in res.summary
        assert "VPC" not in res.summary


def test_prefix_one_level_too_high(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["oss"].update(bucket_path="lab-models:/")), OSS)
    res = expect(out, "oss.model_prefix", "fail", "model-not-gocryptfs")
    assert "one level too high" in res.summary
    assert res.data["suggested"] == "lab-models:/demo-gocryptfs/"


def test_prefix_one_level_too_low_and_nested_upload(lab: Any, lab_clients: Any, tmp_path: Path) -> None:
    """The seed's `cp -r <model dir> plain` puts the model in a sub-folder of the cipherdir; pointing the bucket
    path at that (encrypted) sub-folder is one level too low."""
    src = tmp_path / "plain"
    shutil.copytree(lab.demo.model_dir, src / "Qwen2.5-3B-Instruct")
    cipher = tmp_path / "cipher"
    encrypt_tree(src, cipher, "nested-pass")
    sub = next(n for n in os.listdir(cipher) if n not in ("gocryptfs.conf", "gocryptfs.diriv"))
    _upload_tree(lab_clients(lab.credentials_path).oss_bucket(), cipher, "nested/")
    bucket_path = f"lab-models:/nested/{sub}/"
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["oss"].update(bucket_path=bucket_path)), OSS)
    res = expect(out, "oss.model_prefix", "fail", "model-not-gocryptfs")
    assert "one level too low" in res.summary and res.data["suggested"] == "lab-models:/nested/"


def test_plaintext_upload_and_empty_prefix(lab: Any, lab_clients: Any, tmp_path: Path) -> None:
    _upload_tree(lab_clients(lab.credentials_path).oss_bucket(), lab.demo.model_dir, "plain-model/")
    for path, words in (("lab-models:/plain-model/", "plaintext model"), ("lab-models:/nothing-here/", "nothing")):
        out = run(lab_recipe(lab, tmp_path, lambda d, p=path: d["answers"]["oss"].update(bucket_path=p)), OSS)
        res = expect(out, "oss.model_prefix", "fail", "model-not-gocryptfs")
        assert words in res.summary


def test_method_sam_against_a_gocryptfs_prefix(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["model"].update(encryption_method="sam")), OSS)
    res = expect(out, "oss.model_prefix", "fail", "model-not-gocryptfs")
    assert "MODEL_ENCRYPTION_METHOD is sam" in res.summary


def test_bucket_policy_missing_or_for_another_ip(lab: Any, lab_clients: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    expect(run(recipe, ["oss.bucket_policy"]), "oss.bucket_policy", "pass")  # the lab seeds the CAI-4.1 policy
    lab_clients(lab.credentials_path).oss_bucket().delete_bucket_policy()
    out = run(recipe, ["oss.bucket_policy"])
    res = expect(out, "oss.bucket_policy", "fail", "oss-access-denied")
    assert "no bucket policy" in res.summary
    assert out["oss.bucket_policy"].spec.required is False
    assert '"acs:SourceIp":["127.0.0.1/32"]' in res.fix.text  # the policy to apply, for this instance IP
    other = (
        '{"Version":"1","Statement":[{"Effect":"Allow","Principal":["*"],"Action":["oss:GetObject"],'
        '"Resource":["acs:oss:*:*:lab-models/*"],"Condition":{"IpAddress":{"acs:SourceIp":["198.51.100.7/32"]},'
        '"StringNotLike":{"acs:SourceVpc":"vpc-*"}}}]}'
    )
    lab_clients(lab.credentials_path).oss_bucket().put_bucket_policy(other)
    out = run(recipe, ["oss.bucket_policy"])
    res = expect(out, "oss.bucket_policy", "fail", "oss-access-denied")
    assert "no Allow statement with acs:SourceIp covers 127.0.0.1" in res.summary
    assert any("198.51.100.7/32" in e.observed for e in res.evidence)


def test_bucket_policy_unreadable_is_a_warning(policy_lab: Any, tmp_path: Path) -> None:
    """A RAM user whose access comes from the bucket policy may list the bucket but not read the policy: warn."""
    policy_lab.oss_lab.credentials.add_key("LTAI5tRamUserOfTheLab01", "ram-user-secret-0123456789", "user")
    ak = secret_file(tmp_path, "ram_ak", "LTAI5tRamUserOfTheLab01")
    sk = secret_file(tmp_path, "ram_sk", "ram-user-secret-0123456789")
    recipe = lab_recipe(
        policy_lab, tmp_path, lambda d: d["answers"]["oss"].update(access_key_id=ak, access_key_secret=sk)
    )
    out = run(recipe, ["oss.bucket_policy"])
    expect(out, "oss.credentials", "pass")  # authenticated, though GetBucketInfo is denied to it
    expect(out, "oss.bucket", "pass")
    res = expect(out, "oss.bucket_policy", "warn", "oss-access-denied")
    assert "cannot read the bucket policy with these credentials (AccessDenied)" in res.summary
    assert_no_secrets(outcome_text(out), ["LTAI5tRamUserOfTheLab01", "ram-user-secret-0123456789"])
    owner = run(lab_recipe(policy_lab, tmp_path), ["oss.bucket_policy"])
    assert expect(owner, "oss.bucket_policy", "pass").data["allowing"] == [1]


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def _allow(ip_op: str, ips: list[str], vpc_op: str | None, vpc: str, effect: str = "Allow") -> dict[str, Any]:
    cond: dict[str, Any] = {ip_op: {"acs:SourceIp": ips}}
    if vpc_op:
        cond[vpc_op] = {"acs:SourceVpc": vpc}
    return {
        "Effect": effect,
        "Principal": ["*"],
        "Action": ["oss:GetObject", "oss:ListObjects"],
        "Resource": ["acs:oss:*:123456:b1", "acs:oss:*:123456:b1/*"],
        "Condition": cond,
    }


def test_policy_evaluation_rules() -> None:
    ip = "203.0.113.7"
    ok = evaluate_policy(_policy(_allow("IpAddress", ["203.0.113.0/24"], "StringNotLike", "vpc-*")), ip, "b1")
    assert ok.allowing == [1] and not ok.denying
    # the SourceVpc rule written for traffic from inside a VPC does not admit the public IP
    vpc_only = evaluate_policy(_policy(_allow("IpAddress", [f"{ip}/32"], "StringEquals", "vpc-123")), ip, "b1")
    assert vpc_only.allowing == [] and vpc_only.mentions_ip
    # SourceIp without SourceVpc (OSS rejects it at PutBucketPolicy): flagged
    no_vpc = evaluate_policy(_policy(_allow("IpAddress", [f"{ip}/32"], None, "")), ip, "b1")
    assert no_vpc.ip_without_vpc == [1]
    # an explicit Deny for the IP
    deny = evaluate_policy(
        _policy(
            _allow("IpAddress", [f"{ip}/32"], "StringNotLike", "vpc-*"),
            _allow("IpAddress", ["203.0.113.0/24"], "StringNotLike", "vpc-*", effect="Deny"),
        ),
        ip,
        "b1",
    )
    assert deny.denying == [2]
    # another bucket's statement does not count
    assert (
        evaluate_policy(_policy(_allow("IpAddress", [f"{ip}/32"], "StringNotLike", "vpc-*")), ip, "b2").allowing == []
    )
    # NotIpAddress excluding the IP does not grant it
    assert (
        evaluate_policy(_policy(_allow("NotIpAddress", [f"{ip}/32"], "StringNotLike", "vpc-*")), ip, "b1").allowing
        == []
    )
    assert json.loads(json.dumps(ok.allowing)) == [1]


def test_unfinished_upload_is_not_mistaken_for_a_model(lab: Any, lab_clients: Any, tmp_path: Path) -> None:
    """`cai-tui model upload` writes PREFIX.cai-upload-incomplete first and removes it after verification."""
    bucket = lab_clients(lab.credentials_path).oss_bucket()
    bucket.put_object("demo-gocryptfs/.cai-upload-incomplete", b"upload in progress")
    out = run(lab_recipe(lab, tmp_path), OSS)
    res = expect(out, "oss.model_prefix", "fail", "model-files-missing")
    assert "has not finished" in res.summary and "resumes" in res.fix.text
    bucket.delete_object("demo-gocryptfs/.cai-upload-incomplete")
    expect(run(lab_recipe(lab, tmp_path), OSS), "oss.model_prefix", "pass")
