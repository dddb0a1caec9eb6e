"""``cai-tui model upload`` of a plaintext tree to the lab OSS with real oss2: multipart + small files, verification,
re-runs that skip what is done, remote damage found by the CRC-64 check, bad input, and the OSS error mapping."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cai_tui.events import Event
from tests.conftest import loopback_env

MiB = 1024 * 1024
BIG = 25 * MiB + 1234  # three 10-MiB parts
PREFIX = "up/tree/"
MARKER = ".cai-upload-incomplete"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("CAI_TUI_HOME", str(h))
    return h


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A file larger than one part, many small files in nested folders, an empty file, long and non-ASCII names."""
    root = tmp_path / "model"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "big.safetensors").write_bytes(os.urandom(BIG))
    for i in range(40):
        (root / "sub" / f"shard-{i:02d}.json").write_bytes(os.urandom(i * 997))
    (root / "sub" / "deep" / ("n" * 200)).write_bytes(b"a long name")
    (root / "sub" / "deep" / "模型.txt").write_text("ünïcode\n")
    (root / "empty.txt").write_bytes(b"")
    return root


def owner_bucket(lab: Any) -> Any:
    from cai_tui.clients.oss import Credentials, make_bucket

    k = lab.keys
    return make_bucket(
        lab.oss_endpoint, "lab-models", Credentials(k.oss_access_key_id, k.oss_access_key_secret), region="cn-lab"
    )


def local_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def remote_objects(bucket: Any, prefix: str) -> dict[str, bytes]:
    import oss2

    return {o.key[len(prefix) :]: bucket.get_object(o.key).read() for o in oss2.ObjectIterator(bucket, prefix=prefix)}


def cli(*args: str, home: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = loopback_env()
    env["CAI_TUI_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def op_counts(lab: Any) -> dict[str, int]:
    """The lab's per-operation success counts once they are settled: the server counts an operation just after it
    has sent the answer, so the client can be a step ahead of the counter for a moment."""
    last = lab.oss_lab.op_counts
    while True:
        time.sleep(0.05)
        now = lab.oss_lab.op_counts
        if now == last:
            return now
        last = now


def delta(after: dict[str, int], before: dict[str, int], op: str) -> int:
    return after.get(op, 0) - before.get(op, 0)


# ------------------------------------------------------------------------------------------------ the API
def test_upload_tree_verifies_every_object(lab: Any, tree: Path, home: Path) -> None:
    from cai_tui.actions.model_upload import UploadOptions, upload_tree

    bucket = owner_bucket(lab)
    events: list[tuple[int | None, int | None, int, int, str]] = []

    def on_event(e: Event) -> None:
        if e.kind == "progress":
            assert e.source == "upload" and e.unit == "bytes"
            events.append((e.done, e.total, e.data["files_done"], e.data["files_total"], e.text))

    before = op_counts(lab)
    report = upload_tree(bucket, tree, PREFIX, options=UploadOptions(threads=3), on_event=on_event)
    after = op_counts(lab)

    assert report.ok, report.problems
    assert report.files == report.objects == 44 and not report.extras
    assert report.bytes_total == sum(len(v) for v in local_files(tree).values())
    assert remote_objects(bucket, PREFIX) == local_files(tree)  # every byte, every key (the marker is gone)
    assert delta(after, before, "InitiateMultipartUpload") == 1
    assert delta(after, before, "UploadPart") == 3
    assert delta(after, before, "HeadObject") == 44  # the verification looked at every object
    assert delta(after, before, "DeleteObject") == 1  # the marker, after the verification
    done = [e[0] or 0 for e in events]
    assert done == sorted(done), "byte progress went backwards"
    assert events[-1][:4] == (report.bytes_total, report.bytes_total, 44, 44)
    state = report.state_dir
    assert state is not None and state.parent == home / "state" / "uploads"
    assert (state / "journal.jsonl").stat().st_mode & 0o077 == 0


def test_crc64_matches_what_oss_computes(lab: Any, tree: Path) -> None:
    from cai_tui.actions.model_upload import crc64_of_file

    bucket = owner_bucket(lab)
    path = tree / "sub" / "shard-07.json"
    bucket.put_object("crc/probe", path.read_bytes())
    assert crc64_of_file(str(path)) == (bucket.head_object("crc/probe").server_crc, path.stat().st_size)


# ------------------------------------------------------------------------------------------------ the CLI
def test_rerun_skips_done_files_and_finds_remote_damage(lab: Any, tree: Path, home: Path) -> None:
    bucket = owner_bucket(lab)
    dest = f"oss://lab-models/{PREFIX}"
    args = ("model", "upload", str(tree), dest, "--recipe", str(lab.recipe_path), "--threads", "4")

    first = cli(*args, home=home)
    assert first.returncode == 0, first.stderr
    assert "verified: every object's size and CRC-64 match" in first.stdout

    before = op_counts(lab)
    again = cli(*args, home=home)
    after = op_counts(lab)
    assert again.returncode == 0, again.stderr
    assert "44 already there from an earlier run" in again.stdout
    assert delta(after, before, "PutObject") == 1  # only the marker
    assert delta(after, before, "UploadPart") == 0
    assert delta(after, before, "HeadObject") == 44

    # Someone overwrites one object with other bytes of the same size: the CRC-64 check names it, exit 1.
    victim = PREFIX + "sub/shard-20.json"
    bucket.put_object(victim, os.urandom(20 * 997))
    damaged = cli(*args, home=home)
    assert damaged.returncode == 1, damaged.stderr
    assert f"BAD {victim}: CRC-64" in damaged.stdout
    assert "verification FAILED: 1 object(s)" in damaged.stderr
    assert bucket.object_exists(PREFIX + MARKER), "a failed verification must leave the marker"

    before = op_counts(lab)
    fixed = cli(*args, home=home)
    after = op_counts(lab)
    assert fixed.returncode == 0, fixed.stderr
    assert delta(after, before, "PutObject") == 2  # the marker and the damaged file, nothing else
    assert bucket.get_object(victim).read() == (tree / "sub" / "shard-20.json").read_bytes()
    assert not bucket.object_exists(PREFIX + MARKER)


BAD_INPUT = [
    (("{tree}", "s3://lab-models/x/"), "is not an OSS URL"),
    (("{tree}", "oss://Bad_Bucket/x/"), "is not a valid bucket name"),
    (("{tree}/missing", "oss://lab-models/x/"), "does not exist"),
    (("{tree}/empty.txt", "oss://lab-models/x/"), "is not a directory"),
    (("{tree}", "oss://lab-models/x/", "--threads", "0"), "--threads must be between 1 and 64"),
    (("{tree}", "oss://lab-models/x/", "--part-size", "5"), "at least 10 MiB"),
    (("{tree}", "oss://lab-models/x/", "--password-file", "{tree}/empty.txt"), "only used with --encrypt"),
    (("{tree}", "oss://lab-models/x/", "--encrypt", "--password-file", "{tree}/nope"), "cannot read it"),
    (("{tree}", "oss://no-such-bucket-here/x/"), "NoSuchBucket"),
]


def test_bad_input_exits_2_without_traceback(lab: Any, tmp_path: Path, home: Path) -> None:
    small = tmp_path / "small"
    small.mkdir()
    (small / "empty.txt").write_bytes(b"")
    (small / "config.json").write_text("{}")
    for args, message in BAD_INPUT:
        argv = [a.format(tree=small) for a in args]
        result = cli("model", "upload", *argv, "--recipe", str(lab.recipe_path), home=home)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout, args
    assert not owner_bucket(lab).object_exists("x/" + MARKER), "nothing may be written for bad input"


def test_symlinked_directory_is_refused(lab: Any, tree: Path, home: Path) -> None:
    os.symlink(tree / "sub", tree / "alias")
    result = cli("model", "upload", str(tree), "oss://lab-models/x/", "--recipe", str(lab.recipe_path), home=home)
    assert result.returncode == 2
    assert "a symlink to a directory" in result.stderr
    assert not owner_bucket(lab).object_exists("x/" + MARKER), "nothing may be written for bad input"


# ------------------------------------------------------------------------------------------------ error mapping
@pytest.mark.parametrize(
    ("fault", "status", "code", "faq", "fix"),
    [
        ("oss-access-denied", 403, "AccessDenied", "oss-access-denied", "RAM policy must allow oss:PutObject"),
        ("oss-no-such-bucket", 404, "NoSuchBucket", "oss-no-such-bucket", "create the bucket"),
        ("oss-bad-signature", 403, "SignatureDoesNotMatch", "oss-signature-mismatch", "secret does not belong"),
        ("oss-skew", 403, "RequestTimeTooSkewed", "oss-clock-skew", "time sync"),
    ],
)
def test_oss_errors_map_to_one_clear_message(lab: Any, fault: str, status: int, code: str, faq: str, fix: str) -> None:
    from cai_tui.clients.oss import OssActionError, oss_errors

    bucket = owner_bucket(lab)
    lab.faults.set(fault, True)
    with pytest.raises(OssActionError) as info, oss_errors("uploading x", bucket):
        bucket.put_object("x", b"data")
    err = info.value
    assert (err.code, err.faq_id) == (code, faq)
    assert str(err).startswith(f"uploading x: OSS answered HTTP {status} {code}")
    assert fix in str(err)


def test_unknown_key_and_expired_token_are_named(lab: Any) -> None:
    from cai_tui.clients.oss import Credentials, OssActionError, make_bucket, oss_errors

    k = lab.keys
    wrong = make_bucket(lab.oss_endpoint, "lab-models", Credentials("LTAI5tNoSuchKey00000", "x" * 30), region="cn-lab")
    with pytest.raises(OssActionError, match="AccessKey ID is unknown") as info, oss_errors("listing", wrong):
        wrong.list_objects(max_keys=1)
    assert info.value.code == "InvalidAccessKeyId"

    sts = make_bucket(
        lab.oss_endpoint,
        "lab-models",
        Credentials(k.oss_sts_access_key_id, k.oss_sts_access_key_secret, k.oss_sts_token),
        region="cn-lab",
    )
    sts.put_object("sts-ok", b"fine")  # the token works until the fault says it expired
    lab.faults.set("oss-token-expired", True)
    with pytest.raises(OssActionError, match="STS token has expired") as info, oss_errors("uploading", sts):
        sts.put_object("sts-late", b"late")
    assert (info.value.code, info.value.faq_id) == ("SecurityTokenExpired", "oss-token-expired")


def test_v1_signatures_work_too(lab: Any) -> None:
    from cai_tui.clients.oss import Credentials, make_bucket

    k = lab.keys
    v1 = make_bucket(
        lab.oss_endpoint,
        "lab-models",
        Credentials(k.oss_access_key_id, k.oss_access_key_secret),
        region=None,
        auth_version="v1",
    )
    v1.put_object("v1/probe", b"v1")
    assert v1.get_object("v1/probe").read() == b"v1"
    assert "OSS4-HMAC-SHA256" not in str(type(v1.auth))


def test_stalled_body_and_refused_connection_are_network_errors(lab: Any) -> None:
    import socket

    from cai_tui.clients.oss import Credentials, OssActionError, make_bucket, oss_errors

    k = lab.keys
    creds = Credentials(k.oss_access_key_id, k.oss_access_key_secret)
    quick = make_bucket(lab.oss_endpoint, "lab-models", creds, region="cn-lab", timeout=0.5)
    quick.put_object("stall/probe", b"x" * 1000)
    lab.faults.set("oss-stall-body", True)
    with pytest.raises(OssActionError, match="stalled or was cut off") as info, oss_errors("reading", quick):
        quick.get_object("stall/probe").read()
    assert info.value.faq_id == "oss-unreachable"
    lab.faults.set("oss-stall-body", False)

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    closed = make_bucket(f"http://127.0.0.1:{port}", "lab-models", creds, region="cn-lab", timeout=2)
    with (
        pytest.raises(OssActionError, match=r"cannot reach OSS at http://127\.0\.0\.1") as info,
        oss_errors("x", closed),
    ):
        closed.put_object("x", b"x")
    assert info.value.code == "network"


def test_internal_endpoint_dns_failure_says_to_use_the_public_one() -> None:
    import oss2
    import requests

    from cai_tui.clients.oss import map_oss_error

    cause = requests.exceptions.ConnectionError("Failed to resolve: [Errno -2] Name or service not known")
    err = map_oss_error(
        oss2.exceptions.RequestError(cause), "uploading", "https://oss-cn-beijing-internal.aliyuncs.com"
    )
    assert "only resolve inside an Alibaba Cloud VPC" in str(err)
    assert "https://oss-cn-beijing.aliyuncs.com" in str(err)


def test_parse_oss_url() -> None:
    from cai_tui.clients.oss import OssInputError, parse_oss_url

    assert parse_oss_url("oss://examplebucket/qwen-encrypted") == ("examplebucket", "qwen-encrypted/")
    assert parse_oss_url("oss://examplebucket/a/b/") == ("examplebucket", "a/b/")
    assert parse_oss_url("oss://examplebucket") == ("examplebucket", "")
    for bad in ("examplebucket/x", "oss://-bad/x", "oss://ok-bucket/a//b", "oss://ok-bucket/a/../b"):
        with pytest.raises(OssInputError):
            parse_oss_url(bad)


def test_journal_survives_a_torn_last_line(tmp_path: Path) -> None:
    from cai_tui.actions.model_upload import Journal

    header = {"journal": 1, "bucket": "b", "prefix": "p/", "source": "/s", "mode": "plain"}
    j = Journal(tmp_path / "j.jsonl", header)
    j.open()
    j.append({"t": "done", "key": "p/a", "size": 1, "crc": 5, "src_size": 1, "src_mtime_ns": 9})
    j.close()
    with open(tmp_path / "j.jsonl", "a") as f:
        f.write('{"t":"done","key":"p/b","si')  # killed in the middle of a write
    state = Journal(tmp_path / "j.jsonl", header).open()
    assert set(state.done) == {"p/a"}
    other = Journal(tmp_path / "j.jsonl", {**header, "mode": "gocryptfs"}).open()
    assert other.done == {}, "a journal of another kind of upload must not be reused"


def test_an_unfinished_cipherdir_is_not_uploaded(lab: Any, tmp_path: Path, home: Path) -> None:
    from cai_tui.actions.model_upload import UploadInputError, upload_tree

    half = tmp_path / "cipher"
    half.mkdir()
    (half / "gocryptfs.diriv").write_bytes(os.urandom(16))
    (half / "Xyz0123456789abcdefghij").write_bytes(b"ciphertext")
    with pytest.raises(UploadInputError, match=r"no gocryptfs\.conf: an incomplete cipherdir"):
        upload_tree(owner_bucket(lab), half, "half/")
    (half / "gocryptfs.conf").write_text("{}")
    (half / "CAI-INCOMPLETE").write_text("unfinished")
    with pytest.raises(UploadInputError, match="unfinished encryption"):
        upload_tree(owner_bucket(lab), half, "half/")
    assert not owner_bucket(lab).object_exists("half/" + MARKER)


def test_a_cipherdirs_config_goes_up_last(lab: Any, tmp_path: Path, home: Path) -> None:
    """Uploading an encrypted directory as it is: gocryptfs.conf is written after every other object, so the
    prefix never looks like a complete cipherdir while files are missing."""
    from cai_tui.actions.model_upload import UploadOptions, upload_tree

    cipher = tmp_path / "cipher"
    (cipher / "sub").mkdir(parents=True)
    (cipher / "gocryptfs.conf").write_text('{"Version": 2}\n')
    (cipher / "gocryptfs.diriv").write_bytes(os.urandom(16))
    (cipher / "big").write_bytes(os.urandom(10 * MiB + 1))
    for i in range(20):
        (cipher / "sub" / f"f{i}").write_bytes(os.urandom(100))
    service = lab.oss_lab.service
    order: list[str] = []
    originals = {op: getattr(service, op) for op in ("put_object", "complete_upload")}

    def record(op: str) -> Any:
        def run(h: Any, req: Any, p: Any) -> None:
            originals[op](h, req, p)
            order.append(req.key)

        return run

    for op in originals:
        setattr(service, op, record(op))
    try:
        report = upload_tree(owner_bucket(lab), cipher, "cd/", options=UploadOptions(threads=4))
    finally:
        for op, fn in originals.items():
            setattr(service, op, fn)
    assert report.ok
    assert order[0] == "cd/" + MARKER
    assert order[-1] == "cd/gocryptfs.conf"
    assert len(order) == 1 + 23
