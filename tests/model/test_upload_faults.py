"""Lab faults switched on in the middle of ``cai-tui model upload``: a clear message naming the fix, exit 2, no
traceback, the ``.cai-upload-incomplete`` marker still in OSS — and the next run (fault gone) resumes and completes.

The lab runs in this process; a hook inside its OSS service switches the fault on after a given number of
successful requests, so the fault hits the upload at the same point on every machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import loopback_env

MiB = 1024 * 1024
MARKER = ".cai-upload-incomplete"


class After:
    """Run ``action`` once, right after the ``n``-th successful call of the service operation ``op``."""

    def __init__(self, lab: Any, op: str, n: int, action: Callable[[], None]) -> None:
        self.service = lab.oss_lab.service
        self.op = op
        self.original = getattr(self.service, op)
        self.count = 0
        self.lock = threading.Lock()

        def hook(h: Any, req: Any, p: Any) -> None:
            self.original(h, req, p)
            with self.lock:
                self.count += 1
                fire = self.count == n
            if fire:
                action()

        setattr(self.service, op, hook)

    def remove(self) -> None:
        setattr(self.service, self.op, self.original)


@pytest.fixture
def hooks() -> Iterator[list[After]]:
    made: list[After] = []
    yield made
    for h in made:
        h.remove()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "weights").mkdir(parents=True)
    (root / "weights" / "model.safetensors").write_bytes(os.urandom(3 * 10 * MiB + 5))
    for i in range(10):
        (root / f"file-{i}.json").write_bytes(os.urandom(2000 + i))
    return root


def owner_bucket(lab: Any) -> Any:
    from cai_tui.clients.oss import Credentials, make_bucket

    k = lab.keys
    return make_bucket(
        lab.oss_endpoint, "lab-models", Credentials(k.oss_access_key_id, k.oss_access_key_secret), region="cn-lab"
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


def sts_recipe(lab: Any, path: Path) -> Path:
    """The lab recipe with the STS AccessKey pair and its token (answers.oss.session_token)."""
    from cai_tui.recipe import load_recipe, save_recipe

    loaded = load_recipe(lab.recipe_path)
    oss = loaded.recipe.answers.oss
    oss.access_key_id = f"file:{lab.state_dir / 'oss_sts_access_key_id'}"
    oss.access_key_secret = f"file:{lab.state_dir / 'oss_sts_access_key_secret'}"
    oss.session_token = f"file:{lab.state_dir / 'oss_sts_token'}"
    save_recipe(loaded, path, backup=False)
    return path


def upload(
    lab: Any, tree: Path, prefix: str, recipe: Path, home: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = loopback_env()
    env["CAI_TUI_HOME"] = str(home)
    cmd = [sys.executable, "-m", "cai_tui.cli.main", "model", "upload", str(tree), f"oss://lab-models/{prefix}"]
    cmd += ["--recipe", str(recipe), "--threads", "1", *extra]  # one request at a time: the fault hits one point
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_clean_failure(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    for needle in needles:
        assert needle in result.stderr, result.stderr
    assert "run the same command again: it resumes where this one stopped" in result.stderr


def test_access_denied_during_upload(lab: Any, tree: Path, tmp_path: Path, hooks: list[After]) -> None:
    prefix = "faults/denied/"
    # marker + 4 small files succeed, then every request is refused
    hooks.append(After(lab, "put_object", 5, lambda: lab.faults.set("oss-access-denied", True)))
    result = upload(lab, tree, prefix, lab.recipe_path, tmp_path / "home")
    assert_clean_failure(result, "HTTP 403 AccessDenied", "[FAQ: oss-access-denied]", "RAM policy must allow")
    lab.faults.set("oss-access-denied", False)
    bucket = owner_bucket(lab)
    assert bucket.object_exists(prefix + MARKER), "the upload is unfinished: its marker must stay"
    assert not bucket.object_exists(prefix + "weights/model.safetensors")

    hooks[0].remove()
    before = op_counts(lab)
    again = upload(lab, tree, prefix, lab.recipe_path, tmp_path / "home")
    assert again.returncode == 0, again.stderr
    assert "4 already there from an earlier run" in again.stdout
    assert op_counts(lab)["PutObject"] - before["PutObject"] == 1 + 6  # the marker and the 6 files left
    assert not bucket.object_exists(prefix + MARKER)


def test_token_expired_during_multipart_upload(lab: Any, tree: Path, tmp_path: Path, hooks: list[After]) -> None:
    prefix = "faults/sts/"
    recipe = sts_recipe(lab, tmp_path / "sts.yaml")
    hooks.append(After(lab, "upload_part", 1, lambda: lab.faults.set("oss-token-expired", True)))
    result = upload(lab, tree, prefix, recipe, tmp_path / "home")
    assert_clean_failure(result, "SecurityTokenExpired", "STS token has expired", "[FAQ: oss-token-expired]")
    bucket = owner_bucket(lab)  # the owner key is not an STS token: it still works while the fault is on
    assert bucket.object_exists(prefix + MARKER)
    assert not bucket.object_exists(prefix + "weights/model.safetensors")
    for line in result.stderr.splitlines():  # resolved secrets never reach the output
        assert lab.keys.oss_sts_token not in line and lab.keys.oss_sts_access_key_secret not in line

    lab.faults.set("oss-token-expired", False)  # "a fresh token"
    again = upload(lab, tree, prefix, recipe, tmp_path / "home")
    assert again.returncode == 0, again.stderr
    assert not bucket.object_exists(prefix + MARKER)


def test_access_denied_on_verification(lab: Any, tree: Path, tmp_path: Path, hooks: list[After]) -> None:
    """Everything is uploaded, then the HEADs of the verification are refused: exit 2, marker kept."""
    prefix = "faults/verify/"
    hooks.append(After(lab, "complete_upload", 1, lambda: lab.faults.set("oss-access-denied", True)))
    result = upload(lab, tree, prefix, lab.recipe_path, tmp_path / "home")
    assert result.returncode == 2, result.stderr
    assert "verifying oss://lab-models/faults/verify/: OSS answered HTTP 403 AccessDenied" in result.stderr
    lab.faults.set("oss-access-denied", False)
    assert owner_bucket(lab).object_exists(prefix + MARKER)


def test_stalled_answers_during_verification_time_out(lab: Any, tree: Path, tmp_path: Path, hooks: list[After]) -> None:
    """After the uploads, the HEADs of the verification get no answer (the server holds them): the CLI reports a
    stalled OSS after --timeout instead of hanging, exit 2, and the marker stays."""
    prefix = "faults/hang/"
    service = lab.oss_lab.service
    original = service.head_object
    stall = threading.Event()
    release = threading.Event()

    def head(h: Any, req: Any, p: Any) -> None:
        if stall.is_set():
            release.wait(20)
        original(h, req, p)

    service.head_object = head
    hooks.append(After(lab, "complete_upload", 1, stall.set))
    try:
        result = upload(lab, tree, prefix, lab.recipe_path, tmp_path / "home", "--timeout", "1")
    finally:
        release.set()
        service.head_object = original
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert "verifying oss://lab-models/faults/hang/: the answer from OSS" in result.stderr
    assert "stalled or was cut off" in result.stderr
    assert owner_bucket(lab).object_exists(prefix + MARKER)
