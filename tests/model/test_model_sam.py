"""Sam (CAI-1.6): key and key-ID validation, a missing SDK, and a run against a stand-in SDK whose
`tools/do_content_packager.sh` records how it was called (the real SDK cannot be downloaded here)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cai_tui.actions.model_manifest import MARKER_NAME
from cai_tui.actions.model_sam import key_id_problems, key_problems
from tests.helpers import run_cli
from tests.model.modellib import PASSWORD, passfile

KEY_ID = "LD_Demo_0001"


def make_sdk(root: Path, *, exit_code: int = 0) -> tuple[Path, Path]:
    """A stand-in SDK; its script records $0, its arguments and its working directory, prints the key (as a
    careless script might), and writes ./<key ID>/ as the seed describes."""
    tools = root / "RAI_SAM_SDK_2.1.0-20240731" / "tools"
    tools.mkdir(parents=True)
    record = root / "argv.txt"
    script = tools / "do_content_packager.sh"
    script.write_text(
        "#!/bin/sh\n"
        f'{{ printf \'%s\\n\' "$0" "$@"; pwd; }} > {record}\n'
        'echo "packaging $1 with key $2 into ./$3"\n'
        'mkdir -p "$3" && cp -r "$1"/. "$3"/ && echo sealed > "$3/model.sam"\n'
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return tools.parent, record


def sam(model: Path, dst: Path, pw: Path, sdk: Path | str, key_id: str = KEY_ID):
    return run_cli(
        "model", "encrypt", str(model), str(dst), "--method", "sam", "--password-file", str(pw),
        "--key-id", key_id, "--sam-sdk", str(sdk),
    )  # fmt: skip


def test_key_and_key_id_limits() -> None:
    assert key_problems(b"k" * 4) == [] and key_problems(b"k" * 128) == []
    assert key_problems(b"abc") == ["the Sam key must be 4–128 bytes; this one has 3"]
    assert "must be 4–128 bytes; this one has 129" in key_problems(b"k" * 129)[0]
    assert "no spaces" in key_problems(b"with space")[0]
    assert key_id_problems("a" * 8) == [] and key_id_problems("a" * 48) == [] and key_id_problems(KEY_ID) == []
    assert "8–48 bytes" in key_id_problems("a" * 7)[0] and "8–48 bytes" in key_id_problems("a" * 49)[0]
    assert "it names the output folder" in key_id_problems("../escape-id")[0]


def test_runs_the_packager_exactly_as_the_seed_documents(model: Path, pw: Path, tmp_path: Path) -> None:
    sdk, record = make_sdk(tmp_path / "sdk")
    dst = tmp_path / "sam-out"
    r = sam(model, dst, pw, sdk)
    assert r.returncode == 0, r.stdout + r.stderr
    *argv, cwd = record.read_text().splitlines()
    assert argv == ["./do_content_packager.sh", str(model), PASSWORD.decode(), KEY_ID]
    assert cwd == str(sdk / "tools")
    assert (dst / "model.sam").read_text() == "sealed\n" and (dst / "config.json").exists()
    assert not (sdk / "tools" / KEY_ID).exists()  # moved to the destination
    assert PASSWORD.decode() not in r.stdout + r.stderr
    assert f"packaging {model} with key *** into ./{KEY_ID}" in r.stderr
    assert "Sam output (" in r.stdout and str(dst) in r.stdout


def test_a_failing_packager_leaves_its_output_marked(model: Path, pw: Path, tmp_path: Path) -> None:
    sdk, _ = make_sdk(tmp_path / "sdk", exit_code=3)
    r = sam(model, tmp_path / "out", pw, sdk)
    assert r.returncode == 1
    assert "do_content_packager.sh failed (exit 3)" in r.stderr and PASSWORD.decode() not in r.stderr
    assert (sdk / "tools" / KEY_ID / MARKER_NAME).is_file() and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("key", "key_id", "message"),
    [
        (b"abc", KEY_ID, "the Sam key must be 4–128 bytes; this one has 3"),
        (PASSWORD, "short", "--key-id must be 8–48 bytes (e.g. LD_Demo_0001); 'short' has 5"),
        (PASSWORD, "bad/key-id", "use letters, digits, '_', '-' and '.'"),
    ],
)
def test_invalid_key_or_key_id(model: Path, tmp_path: Path, key: bytes, key_id: str, message: str) -> None:
    sdk, record = make_sdk(tmp_path / "sdk")
    r = sam(model, tmp_path / "out", passfile(tmp_path / "k", key), sdk, key_id)
    assert r.returncode == 2 and message in r.stderr
    assert not record.exists()


def test_missing_sdk_or_script(model: Path, pw: Path, tmp_path: Path) -> None:
    r = sam(model, tmp_path / "out", pw, tmp_path / "nowhere")
    assert r.returncode == 2 and "no such directory; download and unpack the SDK (CAI-1.6): `wget https://" in r.stderr
    sdk, _ = make_sdk(tmp_path / "sdk")
    script = sdk / "tools" / "do_content_packager.sh"
    os.chmod(script, 0o644)
    r = sam(model, tmp_path / "out", pw, sdk)
    assert r.returncode == 2 and f"`chmod +x {script}`" in r.stderr
    script.unlink()
    r = sam(model, tmp_path / "out", pw, sdk)
    assert r.returncode == 2 and "has no tools/do_content_packager.sh" in r.stderr
    r = run_cli("model", "encrypt", str(model), str(tmp_path / "o"), "--method", "sam", "--password-file", str(pw))
    assert r.returncode == 2 and "--key-id is required" in r.stderr and "--sam-sdk is required" in r.stderr
