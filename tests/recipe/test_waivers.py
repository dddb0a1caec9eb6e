"""Adding a waiver to a recipe: validated by the model (reason required, a check id or glob), added to the document in
place so comments survive, a scope waived twice re-worded rather than repeated, and written atomically with a .bak."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from cai_tui.engine.session import waiver_for
from cai_tui.recipe import Draft, RecipeError, load_recipe, loads_recipe
from cai_tui.recipe.waivers import NEED_REASON, add_waiver, save_waiver
from cai_tui.recipe.yaml_io import dumps_recipe
from tests.helpers import REPO

LAB = REPO / "recipes/lab-demo.yaml"
KATA = REPO / "recipes/kata-virtcca-qwen1.5-1.8b.yaml"

LAB_TEXT = LAB.read_text("utf-8")
WITH_WAIVERS = (
    LAB_TEXT.rstrip("\n")
    + """
waivers:
  # no TDX on this test box
  - check: instance.tdx
    reason: a test box without TDX  # kept
"""
)


def _comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def test_a_first_waiver_is_appended_as_a_block_list_and_every_comment_is_kept() -> None:
    original = LAB.read_text("utf-8")
    loaded = loads_recipe(original)
    waiver = add_waiver(loaded, "trustee.auth_nonce", "the lab Trustee speaks 0.4.0", covers="trustee.auth_nonce")
    assert (waiver.check, waiver.reason) == ("trustee.auth_nonce", "the lab Trustee speaks 0.4.0")
    assert [(w.check, w.reason) for w in loaded.recipe.waivers] == [("trustee.auth_nonce", waiver.reason)]
    text = dumps_recipe(loaded)
    assert text.startswith(original.rstrip("\n"))  # the rest of the file, comments included, unchanged
    assert text[len(original.rstrip("\n")) :] == (
        "\nwaivers:\n  - check: trustee.auth_nonce\n    reason: the lab Trustee speaks 0.4.0\n"
    )
    assert waiver_for("trustee.auth_nonce", loads_recipe(text).recipe.waivers) == waiver.reason


def test_an_existing_list_keeps_its_comments_and_a_scope_waived_again_is_reworded() -> None:
    loaded = loads_recipe(WITH_WAIVERS)
    add_waiver(loaded, "gpu.*", "no GPU in CI")
    add_waiver(loaded, "instance.tdx", "  still no TDX\n  on this box ")  # one line, the same entry
    assert [(w.check, w.reason) for w in loaded.recipe.waivers] == [
        ("instance.tdx", "still no TDX on this box"),
        ("gpu.*", "no GPU in CI"),
    ]
    text = dumps_recipe(loaded)
    assert _comments(text) == _comments(WITH_WAIVERS)
    again = loads_recipe(text)
    assert [(w.check, w.reason) for w in again.recipe.waivers] == [(w.check, w.reason) for w in loaded.recipe.waivers]
    assert waiver_for("gpu.persistence", again.recipe.waivers) == "no GPU in CI"


@pytest.mark.parametrize(
    ("check", "reason", "field", "words"),
    [
        ("trustee.auth_nonce", "", "waivers[0].reason", NEED_REASON),
        ("trustee.auth_nonce", "  \n\t ", "waivers[0].reason", NEED_REASON),
        ("trustee.auth_nonce", "ok", "waivers[0].reason", "at least 3 characters"),
        ("", "a fine reason", "waivers[0].check", "give the check id"),
        ("Trustee Nonce", "a fine reason", "waivers[0].check", "dotted lower-case names"),
    ],
)
def test_a_bad_waiver_is_refused_naming_the_field_and_nothing_changes(
    check: str, reason: str, field: str, words: str
) -> None:
    loaded = loads_recipe(LAB.read_text("utf-8"))
    before_recipe, before_text = loaded.recipe, dumps_recipe(loaded)
    with pytest.raises(RecipeError) as e:
        add_waiver(loaded, check, reason)
    [problem] = e.value.problems
    assert problem.field == field and words in problem.message, problem
    assert loaded.recipe is before_recipe and dumps_recipe(loaded) == before_text


def test_a_scope_must_cover_the_check_being_waived() -> None:
    loaded = loads_recipe(WITH_WAIVERS)
    with pytest.raises(RecipeError) as e:
        add_waiver(loaded, "oss.*", "a fine reason", covers="trustee.auth_nonce")
    [problem] = e.value.problems
    assert problem.field == "waivers[1].check" and "does not cover the check trustee.auth_nonce" in problem.message
    assert len(loaded.recipe.waivers) == 1
    add_waiver(loaded, "trustee.*", "a fine reason", covers="trustee.auth_nonce")
    assert [w.check for w in loaded.recipe.waivers] == ["instance.tdx", "trustee.*"]


def test_a_flow_style_empty_list_becomes_a_block_list() -> None:
    loaded = loads_recipe(LAB_TEXT + "waivers: []  # none yet\n")
    add_waiver(loaded, "gpu.*", "no GPU in CI")
    text = dumps_recipe(loaded)
    tail = text.splitlines()[-3:]
    assert tail[0].startswith("waivers:") and "# none yet" in tail[0]  # its comment stays with the key
    assert tail[1:] == ["  - check: gpu.*", "    reason: no GPU in CI"]
    assert [w.check for w in loads_recipe(text).recipe.waivers] == ["gpu.*"]


def test_the_draft_sees_the_waiver_and_saves_it(tmp_path: Path) -> None:
    path = tmp_path / "kata.yaml"
    shutil.copyfile(KATA, path)
    draft = Draft.open(path)
    assert not draft.dirty
    add_waiver(draft.loaded, "kata.*", "the guest is checked by hand here")
    assert draft.dirty and [w.check for w in draft.recipe.waivers] == ["kata.*"]
    draft.save()
    assert not draft.dirty
    assert [w.reason for w in load_recipe(path).recipe.waivers] == ["the guest is checked by hand here"]
    assert _comments(path.read_text("utf-8")) == _comments(KATA.read_text("utf-8"))


def test_save_waiver_writes_the_file_atomically_with_a_backup(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    shutil.copyfile(LAB, path)
    original = path.read_text("utf-8")
    written = save_waiver(path, "trustee.auth_nonce", "the lab Trustee speaks 0.4.0", covers="trustee.auth_nonce")
    assert written == path
    assert path.with_name("lab.yaml.bak").read_text("utf-8") == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [w.check for w in load_recipe(path).recipe.waivers] == ["trustee.auth_nonce"]
    assert path.read_text("utf-8").startswith(original.rstrip("\n"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lab.yaml", "lab.yaml.bak"]  # no temp file left


def test_save_waiver_refuses_a_bad_waiver_or_a_bad_file_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    shutil.copyfile(LAB, path)
    original = path.read_bytes()
    with pytest.raises(RecipeError) as e:
        save_waiver(path, "trustee.auth_nonce", "")
    assert e.value.problems[0].field == "waivers[0].reason"
    assert path.read_bytes() == original and not path.with_name("lab.yaml.bak").exists()

    broken = tmp_path / "broken.yaml"
    broken.write_text("schema_version: 1\nflow: cai\nname: x\nanswers: {model: {source: nowhere}}\n", "utf-8")
    before = broken.read_bytes()
    with pytest.raises(RecipeError) as e:
        save_waiver(broken, "trustee.auth_nonce", "a fine reason")
    assert str(broken) in str(e.value)
    assert broken.read_bytes() == before
    with pytest.raises(RecipeError, match="file not found"):
        save_waiver(tmp_path / "missing.yaml", "trustee.auth_nonce", "a fine reason")
