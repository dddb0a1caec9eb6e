"""The bare seed, a lab asked for an instance where no Docker engine answers, and two labs side by side on the
default state directory (two real ``cai-tui lab serve`` processes)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import oss2
import pytest

from cai_tui.lab.demo import DEMO_BUCKET, DEMO_CIPHER_DIR, DEMO_MODEL_DIR, PASSWORD_FILE, demo_model_files
from cai_tui.lab.orchestrator import DEMO_BUCKET_POLICY, READY_KEYS, Lab
from cai_tui.recipe import CaiRecipe, load_recipe
from tests.conftest import PROXY_VARS, LabProcess, free_port_base, loopback_env


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)


def _kms_secret_missing(clients: Any) -> bool:
    from Tea.exceptions import TeaException

    try:
        clients.kms_secret()
    except TeaException as e:
        assert "Forbidden.ResourceNotFound" in str(e.code), e
        return True
    return False


def test_bare_lab_has_the_plaintext_model_only(tmp_path: Path, lab_clients: Any) -> None:
    state = tmp_path / "state"
    with Lab(state_dir=state) as demo:  # a full demo seed first: the bare start must take it all away
        clients = lab_clients(demo.credentials_path)
        assert clients.oss_bucket().object_exists("demo-gocryptfs/gocryptfs.conf")
        assert not _kms_secret_missing(clients)
    with Lab(state_dir=state, seed="bare") as lab:
        info = lab.ready_info()
        assert list(info) == list(READY_KEYS) and info["seed"] == "bare"
        files = demo_model_files()
        model = state / DEMO_MODEL_DIR
        assert {p.name: p.read_bytes() for p in model.iterdir()} == files
        assert not (state / DEMO_CIPHER_DIR).exists()
        assert not (state / PASSWORD_FILE).exists()

        clients = lab_clients(lab.credentials_path)
        bucket = clients.oss_bucket()
        assert bucket.get_bucket_info().name == DEMO_BUCKET  # the bucket exists …
        assert [o.key for o in oss2.ObjectIterator(bucket)] == []  # … empty
        with pytest.raises(oss2.exceptions.NoSuchBucketPolicy):
            bucket.get_bucket_policy()
        assert _kms_secret_missing(clients)

        # the recipe is the demo's: the replay creates the key file, the cipherdir, the secret and the policy
        rec = load_recipe(lab.recipe_path).recipe
        assert isinstance(rec, CaiRecipe)
        assert rec.answers.model.password is not None and str(rec.answers.model.password).endswith(PASSWORD_FILE)
        assert rec.answers.model.cipher_dir == str(state.resolve() / DEMO_CIPHER_DIR)
        assert rec.targets.instance is None


def test_lab_recipe_renders_the_lab_s_own_bucket_policy(lab: Any) -> None:
    from cai_tui import render

    rec = load_recipe(lab.recipe_path).recipe
    assert isinstance(rec, CaiRecipe)
    assert rec.answers.oss.account_uid == "1234567890" and rec.answers.instance.public_ip == "127.0.0.1"
    rendered = json.loads(render.get("bucket-policy").render(rec).text)
    # the same grant (resources of the lab's account, loopback outside any VPC); the seed's two read actions are a
    # subset of the lab's, which also lets GetBucketInfo through
    (mine,), (lab_s,) = rendered["Statement"], DEMO_BUCKET_POLICY["Statement"]  # type: ignore[misc]
    assert {k: v for k, v in mine.items() if k != "Action"} == {k: v for k, v in lab_s.items() if k != "Action"}
    assert set(mine["Action"]) == {"oss:GetObject", "oss:ListObjects"} and set(mine["Action"]) < set(lab_s["Action"])


def test_no_engine_the_lab_starts_without_an_instance_and_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    with Lab(state_dir=tmp_path / "state", instance=True) as lab:
        info = lab.ready_info()["instance"]
        assert info["state"] == "unavailable", info
        if os.geteuid() == 0:
            assert "no Docker engine answers at unix:///nonexistent" in info["message"], info
            assert "apt-get install docker.io && dockerd &" in info["message"], info
        else:
            assert "not root" in info["message"] and "sudo" in info["message"], info
        assert lab.instance is None
        rec = load_recipe(lab.recipe_path).recipe
        assert isinstance(rec, CaiRecipe)
        assert rec.targets.instance is None and rec.targets.client is None and rec.waivers == []
        assert not (tmp_path / "state" / "instance").exists()
        assert lab.health()["status"] == "ok"  # Trustee, OSS and KMS run anyway


def test_lab_serve_without_engine_prints_the_instance_message(
    lab_process_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent")
    lp = lab_process_factory()
    assert lp.info["instance"]["state"] == "unavailable"
    todo = "apt-get install docker.io && dockerd &" if os.geteuid() == 0 else "sudo"
    assert todo in lp.info["instance"]["message"]
    assert lp.stop() == 0
    assert f"instance: {lp.info['instance']['message']}" in lp.stderr
    assert "Traceback" not in lp.stderr


def _serve(tmp_path: Path, name: str, env: dict[str, str], *args: str) -> LabProcess:
    argv = [sys.executable, "-m", "cai_tui.cli.main", "lab", "serve", "--no-instance", *args]
    err = tmp_path / f"{name}.stderr"
    with open(err, "wb") as f:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=f, env=env, cwd=tmp_path)
    lp = LabProcess(proc, argv, err, t0)
    lp.wait_ready()
    return lp


def test_two_labs_side_by_side_on_the_default_state_dir(tmp_path: Path) -> None:
    env = loopback_env()
    env["CAI_TUI_HOME"] = str(tmp_path / "home")
    default = tmp_path / "home" / "state" / "lab"
    base = free_port_base()
    first = _serve(tmp_path, "first", env, "--port-base", str(base))
    second: LabProcess | None = None
    try:
        assert first.info is not None and first.info["state_dir"] == str(default)
        first_recipe = Path(first.info["recipe"])
        before = first_recipe.read_bytes()
        second = _serve(tmp_path, "second", env)
        assert second.info is not None
        assert second.info["state_dir"] == str(default.with_name("lab-2"))
        assert second.info["recipe"] != first.info["recipe"]
        assert not second.info["trustee_url"].endswith(f":{base}/trustee")  # ephemeral ports, not the first's
        assert first_recipe.read_bytes() == before  # never overwritten
        assert Path(second.info["recipe"]).is_file()
        for lp in (first, second):
            rec = load_recipe(lp.info["recipe"]).recipe  # type: ignore[index]
            assert isinstance(rec, CaiRecipe) and rec.answers.trustee.url == lp.info["trustee_url"]  # type: ignore[index]
        assert second.stop(signal.SIGTERM) == 0
        assert f"another lab holds {default}: this one uses {default.with_name('lab-2')}" in second.stderr
        assert f"recipe {second.info['recipe']}" in second.stderr
        assert first.stop(signal.SIGTERM) == 0
        assert f"recipe {first.info['recipe']}" in first.stderr
        assert "another lab holds" not in first.stderr
    finally:
        for lp in (second, first):
            if lp is not None and lp.proc.poll() is None:
                lp.proc.kill()
                lp.proc.wait(timeout=10)
