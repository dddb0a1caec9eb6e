import hashlib
import os
import stat

import pytest

from cai_tui.recipe import load_recipe, save_recipe
from cai_tui.recipe.yaml_io import dumps_recipe
from tests.helpers import REPO, run_cli

EXAMPLES = sorted((REPO / "recipes").glob("*.yaml"))


def test_there_are_three_examples():
    names = {p.name for p in EXAMPLES}
    assert {"cai-qwen2.5-3b-beijing.yaml", "kata-virtcca-qwen1.5-1.8b.yaml", "lab-demo.yaml"} <= names


def test_cli_validates_every_example():
    r = run_cli("recipe", "validate", *map(str, EXAMPLES))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count(": ok — ") == len(EXAMPLES)


def test_seed_values():
    cai = load_recipe(REPO / "recipes/cai-qwen2.5-3b-beijing.yaml").recipe
    assert cai.answers.model.model_id == "Qwen/Qwen2.5-3B-Instruct"
    assert cai.answers.model.encryption_method == "gocryptfs"
    assert cai.answers.oss.region == "cn-beijing"
    assert cai.answers.trustee.helm.chart_version == "1.0.0"
    kata = load_recipe(REPO / "recipes/kata-virtcca-qwen1.5-1.8b.yaml").recipe
    assert kata.answers.serve.model == "qwen/Qwen1.5-1.8B-Chat"
    assert kata.answers.serve.gpu_memory_utilization == 0.95
    assert kata.answers.cni.subnet == "10.88.0.0/16"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_round_trip_keeps_comments_and_content(path):
    loaded = load_recipe(path)
    text = dumps_recipe(loaded)
    original = path.read_text()
    # unchanged recipe: byte-identical output, comments included
    assert text == original
    assert "#" in text


def test_edit_keeps_comments_and_writes_atomically(tmp_path):
    src = REPO / "recipes/cai-qwen2.5-3b-beijing.yaml"
    dst = tmp_path / "r.yaml"
    dst.write_bytes(src.read_bytes())
    before = hashlib.sha256(dst.read_bytes()).hexdigest()
    loaded = load_recipe(dst)
    loaded.recipe.answers.service.port = 9090
    save_recipe(loaded, dst)
    text = dst.read_text()
    assert "port: 9090" in text
    assert "# CAI-1.4: the same key is stored in KMS at CAI-2.6" in text
    assert stat.S_IMODE(os.stat(dst).st_mode) == 0o600
    bak = dst.with_name("r.yaml.bak")
    assert hashlib.sha256(bak.read_bytes()).hexdigest() == before
    assert load_recipe(dst).recipe.answers.service.port == 9090
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_failed_save_leaves_previous_file(tmp_path, monkeypatch):
    dst = tmp_path / "r.yaml"
    dst.write_bytes((REPO / "recipes/lab-demo.yaml").read_bytes())
    before = dst.read_bytes()
    loaded = load_recipe(dst)
    loaded.recipe.answers.service.port = 9999

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_recipe(loaded, dst)
    monkeypatch.undo()
    assert dst.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_new_recipe_from_example(tmp_path):
    out = tmp_path / "mine.yaml"
    r = run_cli("recipe", "new", str(out), "--flow", "kata-virtcca")
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert load_recipe(out).recipe.flow == "kata-virtcca"
    again = run_cli("recipe", "new", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
