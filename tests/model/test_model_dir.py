"""Validation of a plaintext model directory (CAI-1.1), as a function and through the CLI."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from cai_tui.actions.model_dir import validate_model_dir
from tests.helpers import run_cli
from tests.model.modellib import SHARD1, SHARD2


def test_a_complete_model_is_reported(model: Path) -> None:
    r = validate_model_dir(model)
    assert r.ok, r.problems
    assert r.has_config and r.architecture == "Qwen2ForCausalLM"
    assert r.tokenizer_files == ["tokenizer.json"]
    assert r.weight_files == [SHARD1, SHARD2]
    assert r.index_files == ["model.safetensors.index.json"]
    sizes = [p.stat().st_size for p in model.rglob("*") if p.is_file()]
    assert r.file_count == len(sizes) and r.total_bytes == sum(sizes)
    assert "2 weight file(s)" in r.summary() and str(model) in r.summary()


def test_missing_config_and_the_nested_folder_mistake(tmp_path: Path, model: Path) -> None:
    outer = tmp_path / "plain"
    outer.mkdir()
    shutil.move(str(model), outer / model.name)  # what the seed's `cp -r MODEL ~/mount/plain` produces
    r = validate_model_dir(outer)
    assert not r.ok and r.nested == model.name
    assert f"config.json is one level down, in {model.name}/" in r.problems[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = validate_model_dir(empty)
    assert r.nested is None and "has no config.json" in r.problems[0]
    assert "does not exist" in validate_model_dir(tmp_path / "nope").problems[0]


def test_missing_shard_truncated_shard_no_tokenizer(model: Path) -> None:
    os.unlink(model / SHARD2)
    r = validate_model_dir(model)
    assert r.missing_shards == [SHARD2]
    assert any("1 weight shard(s) named by model.safetensors.index.json are missing" in p for p in r.problems)
    with open(model / SHARD1, "r+b") as f:
        f.truncate(1000)
    r = validate_model_dir(model)
    assert r.truncated == [SHARD1] and any(f"{SHARD1}: truncated (1000 of " in p for p in r.problems)
    os.unlink(model / "tokenizer.json")
    assert any("no tokenizer file" in p for p in validate_model_dir(model).problems)


def test_unfinished_download_leftovers_are_warned(model: Path) -> None:
    (model / "model-00003.safetensors.incomplete").write_bytes(b"x")
    r = validate_model_dir(model)
    assert r.ok and "leftovers of an unfinished download" in r.warnings[0]


def test_cli_encrypt_refuses_a_dir_without_config(tmp_path: Path, model: Path, pw: Path) -> None:
    os.unlink(model / "config.json")
    r = run_cli("model", "encrypt", str(model), str(tmp_path / "out"), "--password-file", str(pw))
    assert r.returncode == 2, r.stderr
    assert "has no config.json: not a model directory" in r.stderr
    assert not (tmp_path / "out").exists()


def test_cli_download_accepts_a_local_directory(model: Path, tmp_path: Path) -> None:
    r = run_cli("model", "download", str(model), env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "config.json; tokenizer.json; 2 weight file(s)" in r.stdout
    assert f"model directory: {model}" in r.stdout
    os.unlink(model / SHARD1)
    r = run_cli("model", "download", str(model))
    assert r.returncode == 2 and "are missing: " + SHARD1 in r.stderr
