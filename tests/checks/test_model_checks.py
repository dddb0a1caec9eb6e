"""The model and disk checks on real directories (the lab's demo model and cipherdir, and variants of them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from cai_tui.gocryptfs import decrypt_tree, encrypt_tree
from cai_tui.targets.local import LocalTarget
from cai_tui.targets.sysroot import SysrootTarget
from tests.targets.docker_lab import ensure_engine, remove_test_containers

from .checklib import assert_no_secrets, expect, lab_recipe, lab_secrets, outcome_text, run, secret_file

NESTED = "Qwen2.5-3B-Instruct"


def _model(d: dict[str, Any], **kw: Any) -> None:
    d["answers"]["model"].update(**kw)


def test_demo_model_directory_passes(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path), ["model.local_dir"])
    res = expect(out, "model.local_dir", "pass")
    assert "config.json" in res.summary and "tokenizer.json" in res.summary and "Qwen2ForCausalLM" in res.summary
    assert res.data["weights"] == ["model.safetensors"] and res.data["size"] > 300_000


def test_model_in_a_sub_folder_is_flagged(lab: Any, tmp_path: Path) -> None:
    parent = tmp_path / "download"
    shutil.copytree(lab.demo.model_dir, parent / NESTED)
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, local_dir=str(parent))), ["model.local_dir"])
    res = expect(out, "model.local_dir", "fail", "model-layout-nested")
    assert f"in {NESTED}/" in res.summary and res.data["suggested"] == str(parent / NESTED)


def test_incomplete_or_missing_model_directory(lab: Any, tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    shutil.copytree(lab.demo.model_dir, partial)
    (partial / "model.safetensors").unlink()
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, local_dir=str(partial))), ["model.local_dir"])
    res = expect(out, "model.local_dir", "fail", "model-files-missing")
    assert "lacks weights" in res.summary
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, local_dir=str(tmp_path / "absent"))), ["model.local_dir"])
    res = expect(out, "model.local_dir", "fail", "model-files-missing")
    assert "does not exist" in res.summary

    def not_downloaded(d: dict[str, Any]) -> None:
        d["answers"]["model"].pop("local_dir")
        d["answers"]["model"].update(source="modelscope", model_id="Qwen/NotDownloadedHere-0.1B")

    out = run(lab_recipe(lab, tmp_path, not_downloaded), ["model.local_dir"])
    res = expect(out, "model.local_dir", "skip")
    assert "not downloaded here yet" in res.summary and ".cache/modelscope/hub/models/Qwen" in res.summary


def test_demo_cipherdir_passes_and_names_its_root(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path), ["model.encrypted"])
    res = expect(out, "model.encrypted", "pass")
    assert "the password opens it" in res.summary and "config.json" in res.summary
    # the decrypted root names are the demo model's own file names
    decrypted = next(e.observed for e in res.evidence if e.source.startswith("decrypted names"))
    assert all(name in decrypted for name in os.listdir(lab.demo.model_dir))
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


def test_wrong_model_password(lab: Any, tmp_path: Path) -> None:
    ref = secret_file(tmp_path, "pw", "definitely-not-it")
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, password=ref)), ["model.encrypted"])
    res = expect(out, "model.encrypted", "fail", "model-password-wrong")
    assert "password incorrect" in res.summary
    assert_no_secrets(outcome_text(out), ["definitely-not-it", lab.demo.password])


def test_cipher_dir_one_level_too_high_or_not_a_cipherdir(lab: Any, tmp_path: Path) -> None:
    parent = tmp_path / "mount"
    shutil.copytree(lab.demo.cipher_dir, parent / "cipher")
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, cipher_dir=str(parent))), ["model.encrypted"])
    res = expect(out, "model.encrypted", "fail", "model-not-gocryptfs")
    assert "one level down" in res.summary and str(parent / "cipher") in res.fix.text
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, cipher_dir=str(lab.demo.model_dir))), ["model.encrypted"])
    res = expect(out, "model.encrypted", "fail", "model-not-gocryptfs")
    assert "not a gocryptfs cipherdir" in res.summary


def test_seed_style_nested_encryption_is_flagged(lab: Any, tmp_path: Path) -> None:
    """`cp -r <model dir> ~/mount/plain` (CAI-1.5) encrypts the model inside a sub-folder."""
    plain = tmp_path / "plain"
    shutil.copytree(lab.demo.model_dir, plain / NESTED)
    cipher = tmp_path / "cipher"
    encrypt_tree(plain, cipher, lab.demo.password)
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, cipher_dir=str(cipher))), ["model.encrypted"])
    res = expect(out, "model.encrypted", "fail", "model-layout-nested")
    assert NESTED in res.summary and res.data["subfolder"] == NESTED


def _mount(d: dict[str, Any], path: Path) -> None:
    d["answers"]["service"].update(mount_point=str(path))


def test_mounted_model(lab: Any, tmp_path: Path) -> None:
    mnt = tmp_path / "model"
    decrypt_tree(lab.demo.cipher_dir, mnt, lab.demo.password)
    out = run(lab_recipe(lab, tmp_path, lambda d: _mount(d, mnt)), ["model.mounted"])
    res = expect(out, "model.mounted", "pass")
    assert "config.json" in res.summary and out["model.mounted"].target_name == "local"


def test_mounted_model_nested_one_level_down(lab: Any, tmp_path: Path) -> None:
    mnt = tmp_path / "model"
    decrypt_tree(lab.demo.cipher_dir, mnt / NESTED, lab.demo.password)
    out = run(lab_recipe(lab, tmp_path, lambda d: _mount(d, mnt)), ["model.mounted"])
    res = expect(out, "model.mounted", "fail", "model-layout-nested")
    assert f"--model={mnt}/{NESTED}" in res.fix.text and res.data["suggested"] == str(mnt / NESTED)


def test_mount_point_without_a_cai_stack_is_skipped(lab: Any, tmp_path: Path) -> None:
    ensure_engine()  # the check asks the local engine for a cachefs container: there must be none
    _, kept = remove_test_containers("name=cachefs")
    if kept:
        pytest.fail(f"containers named *cachefs* exist on this engine ({', '.join(kept)}); remove them", pytrace=False)
    out = run(lab_recipe(lab, tmp_path, lambda d: _mount(d, tmp_path / "not-there")), ["model.mounted"])
    res = expect(out, "model.mounted", "skip")
    assert "CAI stack has not run yet" in res.summary
    out = run(lab_recipe(lab, tmp_path), ["model.mounted"], targets={"workstation": LocalTarget()})
    assert "no target given" in out["model.mounted"].result.summary  # no instance target: the runner skips it


def test_mounted_model_on_a_captured_rootfs(lab: Any, tmp_path: Path) -> None:
    """Through a sysroot target (a mounted guest rootfs): the same check reads under the root."""
    root = tmp_path / "rootfs"
    decrypt_tree(lab.demo.cipher_dir, root / "tmp" / "model" / NESTED, lab.demo.password)
    targets = {"workstation": LocalTarget(), "instance": SysrootTarget(root)}
    recipe = lab_recipe(lab, tmp_path, lambda d: d["answers"]["service"].update(mount_point="/tmp/model"))
    out = run(recipe, ["model.mounted", "disk.capacity"], targets=targets)
    expect(out, "model.mounted", "fail", "model-layout-nested")
    assert out["model.mounted"].target_name.startswith("sysroot:")
    expect(out, "disk.capacity", "skip")


def test_disk_capacity(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path), ["disk.capacity"])
    res = expect(out, "disk.capacity", "pass")
    assert res.data["model_size"] and res.data["free"] > 2 * res.data["model_size"]
    assert any(e.source == "df -Pk /" for e in res.evidence)


def test_disk_too_small_for_twice_the_model(lab: Any, tmp_path: Path) -> None:
    """A model of 8 TiB (a sparse file: du --apparent-size counts it, the disk does not hold it)."""
    big = tmp_path / "big-model"
    shutil.copytree(lab.demo.model_dir, big)
    with open(big / "model-00002.safetensors", "wb") as f:
        f.truncate(8 << 40)
    out = run(lab_recipe(lab, tmp_path, lambda d: _model(d, local_dir=str(big))), ["disk.capacity"])
    res = expect(out, "disk.capacity", "fail", "disk-too-small")
    assert res.data["model_size"] >= 8 << 40 and "needs 2 ×" in res.summary


def test_system_disk_under_one_tib_warns_on_an_instance(lab: Any, tmp_path: Path) -> None:
    """On the instance (a machine target other than this workstation) the seed's 1 TiB system disk applies."""
    instance = LocalTarget(name="instance-under-test")
    out = run(
        lab_recipe(lab, tmp_path), ["disk.capacity"], targets={"workstation": LocalTarget(), "instance": instance}
    )
    res = out["disk.capacity"].result
    if res.data["total"] >= 0.95 * (1 << 40):  # this machine's root disk is large enough: nothing to warn about
        expect(out, "disk.capacity", "pass")
    else:
        expect(out, "disk.capacity", "warn", "disk-too-small")
        assert "at least 1 TiB" in res.summary
