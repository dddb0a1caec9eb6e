"""The stage engine's plan: every stage of every example recipe, placeholders filled or named, applicability, the
stage selection of --from/--only, and the exported script."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cai_tui.engine.exports import export_script
from cai_tui.engine.items import KINDS
from cai_tui.engine.plan import PlanError, fill, plan_stage, select_stages
from cai_tui.engine.replay import plan_recipe
from cai_tui.recipe import load_recipe, loads_recipe
from cai_tui.stages import load_all
from tests.helpers import REPO

EXAMPLES = sorted((REPO / "recipes").glob("*.yaml"))
RAW = re.compile(r"(?<!\$)\{[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+\}")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_item_of_every_stage_is_planned_with_target_and_no_raw_placeholder(path: Path) -> None:
    loaded = load_recipe(path)
    flow = load_all()[loaded.recipe.flow]
    total = 0
    for stage in flow.stages:
        items = plan_stage(stage, loaded)
        assert items, stage.id
        for it in items:
            total += 1
            assert it.kind in KINDS
            assert it.target, it.id
            assert not RAW.search(it.text), f"{it.id}: raw placeholder in {it.text!r}"
            if it.kind in ("action", "command") and it.applies and it.kind == "action" and it.argv:
                assert it.argv[0] == "cai-tui", it.id
            if it.kind == "check":
                assert it.guard == (it.name,)
        # checks come after the doers, once each
        kinds = [it.kind for it in items]
        if "check" in kinds:
            first = kinds.index("check")
            assert all(k == "check" for k in kinds[first:]), stage.id
            names = [it.name for it in items if it.kind == "check"]
            assert len(names) == len(set(names)), stage.id
    assert total > 20


def test_a_missing_value_is_a_named_problem_not_a_raw_placeholder() -> None:
    loaded = load_recipe(REPO / "recipes" / "lab-demo.yaml")
    text, problems = fill("ossutil cp x -e {oss.upload_endpoint} && echo {trustee.url}", loaded)
    assert "{oss.upload_endpoint}" not in text and "<UNSET:oss.upload_endpoint>" in text
    assert problems == ["answers.oss.upload_endpoint is not set: set it in the recipe (this command needs it)"]
    assert "http://127.0.0.1:18600/trustee" in text


def test_secrets_fill_as_reads_of_their_reference_never_values() -> None:
    loaded = load_recipe(REPO / "recipes" / "lab-demo.yaml")
    text, problems = fill("echo {model.password} {oss.access_key_id}", loaded)
    assert problems == []
    assert text == (
        'echo "$(head -n1 ~/.local/state/cai-tui/lab/model-password)" '
        '"$(head -n1 ~/.local/state/cai-tui/lab/oss_access_key_id)"'
    )


def test_home_paths_stay_expandable_and_jsonpath_braces_are_left_alone() -> None:
    loaded = load_recipe(REPO / "recipes" / "lab-demo.yaml")
    text, problems = fill("ls {model.cipher_dir} && kubectl get x -o jsonpath='{.status.x}'", loaded)
    assert problems == []
    assert text == "ls ~/.local/state/cai-tui/lab/demo-cipher && kubectl get x -o jsonpath='{.status.x}'"


def _recipe_with(text_from: Path, old: str, new: str):
    text = text_from.read_text()
    assert old in text
    return loads_recipe(text.replace(old, new), name="edited.yaml")


def test_when_picks_the_steps_of_the_recipe_s_choices() -> None:
    lab = REPO / "recipes" / "lab-demo.yaml"
    stage = load_all()["cai"].stage("model-encrypt")

    def applying(loaded):
        return {it.covers for it in plan_stage(stage, loaded) if it.applies and it.kind != "check"}

    assert applying(load_recipe(lab)) == {"CAI-1.2", "CAI-1.3", "CAI-1.4", "CAI-1.5"}
    sam = _recipe_with(lab, "encryption_method: gocryptfs", "encryption_method: sam")
    assert applying(sam) == {"CAI-1.2", "CAI-1.6"}
    items = plan_stage(stage, sam)
    na = next(it for it in items if it.covers == "CAI-1.5")
    assert not na.applies and "model.encryption_method is sam" in na.not_applicable


def test_stage_selection_by_id_number_and_covered_step() -> None:
    stages = load_all()["cai"].stages
    ids = [s.id for s in select_stages(stages, start="cai-env", only=None)]
    assert ids[0] == "cai-env" and ids[-1] == "troubleshoot"
    assert [s.id for s in select_stages(stages, start=None, only=["02", "CAI-1.7"])] == [
        "model-encrypt",
        "model-upload",
    ]
    with pytest.raises(PlanError) as e:
        select_stages(stages, start="nope", only=None)
    assert "no stage 'nope'" in str(e.value) and "01 model-source" in str(e.value)


def test_export_script_is_valid_sh_and_guards_each_action(tmp_path: Path) -> None:
    loaded = load_recipe(REPO / "recipes" / "lab-demo.yaml")
    plans = plan_recipe(loaded)
    text = export_script(plans, str((REPO / "recipes" / "lab-demo.yaml").resolve()))
    script = tmp_path / "replay.sh"
    script.write_text(text)
    sh = shutil.which("sh")
    assert sh is not None
    r = subprocess.run([sh, "-n", str(script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'cai-tui doctor --recipe "$RECIPE" --only model.encrypted >/dev/null 2>&1 || cai-tui model encrypt' in text
    assert '--recipe "$RECIPE"' in text and str(REPO / "recipes" / "lab-demo.yaml") in text.splitlines()[5]
    assert not RAW.search(text.replace("jsonpath='{.status", ""))
