"""Bad recipe files: a clear message and exit 2, never a traceback, and the file on disk untouched."""

import hashlib

import pytest

from tests.helpers import run_cli

GOOD_HEAD = "schema_version: 1\nflow: cai\nname: t\nanswers:\n  oss:\n    bucket_path: my-bucket:/m/\n"

CASES = {
    "malformed-yaml": (b"schema_version: 1\nflow: [cai\n", "malformed YAML"),
    "tab-indent": (b"schema_version: 1\nflow: cai\nanswers:\n\toss: {}\n", "malformed YAML"),
    "duplicate-key": (b"schema_version: 1\nflow: cai\nflow: cai\n", "malformed YAML"),
    "top-level-list": (b"- a\n- b\n", "top level must be a mapping"),
    "scalar": (b"just words\n", "top level must be a mapping"),
    "wrong-types": (
        GOOD_HEAD.encode() + b"  service:\n    port: [8080]\n    sharing_peers: 1.2.3.4\n",
        "answers.service.port",
    ),
    "unknown-key": (GOOD_HEAD.encode() + b"  servise:\n    port: 8080\n", "did you mean 'service'?"),
    "unknown-top-key": (GOOD_HEAD.encode() + b"waiver: []\n", "did you mean 'waivers'?"),
    "inline-secret": (GOOD_HEAD.encode() + b"    access_key_secret: Zx9Plaintext\n", "inline secret"),
    "empty": (b"", "empty file"),
    "only-comments": (b"# nothing here\n\n", "empty file"),
    "binary": (bytes(range(256)) * 4, "binary file"),
    "latin1": ("name: café\n".encode("latin-1"), "not UTF-8"),
    "huge": (b"# " + b"x" * (1024 * 1024 + 10) + b"\n", "limit"),
    "newer-schema": (b"schema_version: 99\nflow: cai\nname: t\n", "newer than this cai-tui"),
    "no-schema": (b"flow: cai\nname: t\n", "schema_version is missing"),
    "bad-flow": (b"schema_version: 1\nflow: tdx\nname: t\nanswers: {}\n", "flow must be one of"),
    "missing-answers": (b"schema_version: 1\nflow: cai\nname: t\n", "answers: required"),
    "alias-bomb": (
        b"schema_version: 1\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        b"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n",
        "",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_file_clear_message_exit_2_untouched(tmp_path, case):
    data, expect = CASES[case]
    f = tmp_path / "bad.yaml"
    f.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    r = run_cli("recipe", "validate", str(f))
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and "Traceback" not in r.stdout
    assert str(f) in r.stderr
    assert expect in r.stderr
    if case == "inline-secret":
        assert "Zx9Plaintext" not in r.stderr
    assert hashlib.sha256(f.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]


def test_every_problem_line_has_file_line_field(tmp_path):
    f = tmp_path / "r.yaml"
    f.write_text(GOOD_HEAD + "  service:\n    port: 0\n  trustee:\n    url: nope\n")
    r = run_cli("recipe", "validate", str(f))
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{f}:8: answers.service.port: ")
    assert lines[1].startswith(f"{f}:10: answers.trustee.url: ")


def test_several_files_each_reported(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD_HEAD)
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\n")
    r = run_cli("recipe", "validate", str(good), str(bad), str(tmp_path / "missing.yaml"))
    assert r.returncode == 2
    assert f"{good}: ok" in r.stdout
    assert f"{bad}:" in r.stderr and "missing.yaml: file not found" in r.stderr
