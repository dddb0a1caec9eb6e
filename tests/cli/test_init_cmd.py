"""``cai-tui init``: the installed command on a real pseudo-terminal (questionary reading real keys; nothing mocked)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from cai_tui.plain.texts import STRINGS
from cai_tui.recipe import load_recipe
from cai_tui.recipe.examples import example_path
from cai_tui.recipe.secrets import SecretRef
from cai_tui.recipe.yaml_io import loads_recipe
from cai_tui.stages import load_all

from .ptyterm import CTRL_C, CTRL_D, DOWN, ENTER, Term, cai_tui

WHAT_NOW = r"what now\?"
SKIP, FINISH = DOWN + ENTER, DOWN + DOWN + ENTER  # the stage menu: answer / skip / keep the rest and save


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cai_tui(), "recipe", "validate", str(path)], capture_output=True, text=True, timeout=60)


def _example_answers(flow: str) -> dict:
    return loads_recipe(example_path(flow).read_text(encoding="utf-8")).recipe.answers.model_dump()


def test_every_default_accepted_gives_a_recipe_that_validates(tmp_path: Path) -> None:
    term = Term(["init", "--plain"], cwd=tmp_path)
    prompts = term.drive()
    assert term.finish() == 0, term.text()[-2000:]
    written = tmp_path / "cai-recipe.yaml"
    stages = load_all()["cai"].stages
    # every stage was shown, and each offered answer/skip/finish or said it had nothing new
    for i, stage in enumerate(stages, 1):
        assert f"Stage {i}/{len(stages)}: {stage.title.en}" in term.text()
    assert sum(bool(re.search(WHAT_NOW, p)) for p in prompts) >= 10
    assert len(prompts) > 40  # the stages' fields were asked, not skipped
    result = _validate(written)
    assert result.returncode == 0, result.stderr
    assert "ok — cai recipe" in result.stdout
    assert load_recipe(written).recipe.answers.model_dump() == _example_answers("cai")
    assert written.stat().st_mode & 0o777 == 0o600
    text = term.text()
    assert f"Saved {written}" in text
    assert f"cai-tui recipe validate {written}" in text and f"cai-tui replay {written} --plan" in text


def test_kata_flow_in_chinese_asks_the_specs_zh_texts_and_validates(tmp_path: Path) -> None:
    out = tmp_path / "kata.yaml"
    term = Term(["init", "--plain", "--flow", "kata-virtcca", "--lang", "zh", "-o", str(out)], cwd=tmp_path)
    term.drive()
    assert term.finish() == 0, term.text()[-2000:]
    stages = load_all()["kata-virtcca"].stages
    text = term.text()
    assert f"阶段 1/{len(stages)}：{stages[0].title.zh}" in text
    rootfs = stages[1].fields[0]
    assert f"? {rootfs.label.zh} [" in text  # a field asked with its zh label
    assert f"{stages[1].title.zh}：接下来？" in text and "what now" not in text
    assert _validate(out).returncode == 0
    assert load_recipe(out).recipe.answers.model_dump() == _example_answers("kata-virtcca")


def _skip_other_stages(prompt: str) -> str:
    return SKIP if re.search(WHAT_NOW, prompt) else ENTER


def test_invalid_answers_are_asked_again_with_the_fields_message(tmp_path: Path) -> None:
    term = Term(["init", "--plain"], cwd=tmp_path)
    prompts = term.drive(
        [
            (r"Deploy Trustee: what now", ENTER),
            (r"\? Trustee URL \[", "alb.example.com/trustee" + ENTER),
            (r"\? Trustee URL \[", "http://alb.example.com/trustee" + ENTER),
            (r"Write cai.env: what now", ENTER),
            (r"\? Service port \[", "99999" + ENTER),
            (r"\? Service port \[", "8081" + ENTER),
            (WHAT_NOW, FINISH),
        ],
        otherwise=_skip_other_stages,
    )
    assert term.finish() == 0, term.text()[-2000:]
    assert sum("? Trustee URL [" in p for p in prompts) == 2
    assert sum("? Service port [" in p for p in prompts) == 2
    text = term.text()
    url_problem = text.index("! answers.trustee.url: must be a URL with its scheme")
    port_problem = text.index("! answers.service.port: a port is a whole number 1–65535 (got 99999)")
    # each message comes after the field was first asked, and the field is asked again after it
    assert text.index("? Trustee URL [") < url_problem < text.index("? Trustee URL [", url_problem)
    assert text.index("? Service port [") < port_problem < text.index("? Service port [", port_problem)
    answers = load_recipe(tmp_path / "cai-recipe.yaml").recipe.answers
    assert answers.trustee.url == "http://alb.example.com/trustee"
    assert answers.service.port == 8081


def test_a_secret_is_asked_as_a_reference_and_saved_as_one(tmp_path: Path) -> None:
    term = Term(["init", "--plain", "-o", "r.yaml"], cwd=tmp_path)
    term.drive(
        [
            (r"Upload the encrypted model to OSS: what now", ENTER),
            (r"\? AccessKey ID \(reference\)", DOWN + ENTER),  # keep env:OSS_ACCESS_KEY_ID → env:NAME
            (r"\? Environment variable name", "my key" + ENTER),  # not a variable name: asked again
            (r"\? Environment variable name", "env:MY_KEY" + ENTER),  # the scheme typed too is fine
            (WHAT_NOW, FINISH),
        ],
        otherwise=_skip_other_stages,
    )
    assert term.finish() == 0, term.text()[-2000:]
    text = term.text()
    assert "a secret: give where it is kept (a reference), never the value itself" in text
    assert "! answers.oss.access_key_id: malformed secret reference" in text
    saved = (tmp_path / "r.yaml").read_text(encoding="utf-8")
    assert re.search(r"^\s+access_key_id: env:MY_KEY\b", saved, re.M)
    assert load_recipe(tmp_path / "r.yaml").recipe.answers.oss.access_key_id == SecretRef("env", "MY_KEY")
    assert _validate(tmp_path / "r.yaml").returncode == 0


def test_a_skipped_stage_keeps_its_values_and_is_not_asked_later(tmp_path: Path) -> None:
    term = Term(["init", "--plain"], cwd=tmp_path)
    prompts = term.drive([(WHAT_NOW, SKIP), (r"\? Model key \(reference\)", ENTER), (WHAT_NOW, FINISH)])
    assert term.finish() == 0, term.text()[-2000:]
    asked = "\n".join(prompts)
    assert "modelscope model ID" not in asked and "Model source" not in asked  # stage 1 skipped
    assert re.search(r"Upload the encrypted model to OSS: what now", prompts[-1])  # stage 3's menu: keep the rest
    assert "Stage 4/14" not in term.text()
    assert _validate(tmp_path / "cai-recipe.yaml").returncode == 0


def test_an_answer_decides_which_fields_of_the_stage_follow(tmp_path: Path) -> None:
    term = Term(["init", "--plain"], cwd=tmp_path)
    prompts = term.drive([(r"\? Model source", DOWN + DOWN + ENTER), (r"\? OSS region", ENTER), (WHAT_NOW, FINISH)])
    assert term.finish() == 0, term.text()[-2000:]
    first_stage = "\n".join(prompts[: prompts.index(next(p for p in prompts if "OSS region" in p)) + 1])
    assert "modelscope model ID" not in first_stage  # only for modelscope/local
    assert "not asked here" in term.text() and "model.model_id" in term.text()
    assert load_recipe(tmp_path / "cai-recipe.yaml").recipe.answers.model.source == "public-encrypted"


def test_an_existing_file_is_not_overwritten_without_consent(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("# my own notes\n", encoding="utf-8")
    term = Term(["init", "--plain", "-o", str(target)], cwd=tmp_path)
    term.drive([(WHAT_NOW, FINISH), (r"mine\.yaml exists\. Overwrite it\?", "n"), (r"Save to another file", ENTER)])
    assert term.finish() == 1, term.text()[-2000:]
    assert f"note: {target} exists" in term.text()
    assert "not saved; nothing was written." in term.text()
    assert target.read_text(encoding="utf-8") == "# my own notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]


def test_refusing_to_overwrite_offers_another_name_and_consent_keeps_a_backup(tmp_path: Path) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("# my own notes\n", encoding="utf-8")
    term = Term(["init", "--plain", "-o", str(target)], cwd=tmp_path)
    term.drive([(WHAT_NOW, FINISH), (r"Overwrite it\?", "n"), (r"Save to another file", "other.yaml" + ENTER)])
    assert term.finish() == 0, term.text()[-2000:]
    assert target.read_text(encoding="utf-8") == "# my own notes\n"
    assert _validate(tmp_path / "other.yaml").returncode == 0

    term = Term(["init", "--plain", "-o", str(target)], cwd=tmp_path)
    term.drive([(WHAT_NOW, FINISH), (r"Overwrite it\?", "y")])
    assert term.finish() == 0, term.text()[-2000:]
    assert (tmp_path / "mine.yaml.bak").read_text(encoding="utf-8") == "# my own notes\n"
    assert _validate(target).returncode == 0


@pytest.mark.parametrize(
    ("rules", "key"),
    [
        ([], CTRL_C),  # at the first stage's menu
        ([(WHAT_NOW, ENTER), (r"\? Model source", ENTER)], CTRL_D),  # at a text prompt (modelscope model ID)
    ],
    ids=["ctrl-c", "ctrl-d"],
)
def test_ctrl_c_or_ctrl_d_aborts_and_writes_nothing(tmp_path: Path, rules: list[tuple[str, str]], key: str) -> None:
    term = Term(["init", "--plain"], cwd=tmp_path)
    for pattern, keys in rules:
        assert term.next_prompt()
        assert re.search(pattern, term.prompt())
        term.answer(keys)
    assert term.next_prompt()
    term.answer(key)
    assert term.finish() == 130, term.text()[-2000:]
    assert "aborted; nothing was written." in term.text()
    assert "Traceback" not in term.text()
    assert list(tmp_path.iterdir()) == []


def test_without_a_terminal_it_asks_line_by_line(tmp_path: Path) -> None:
    """`ssh -T`, a pipe: numbered choices, one answer per line; Enter everywhere gives the example's valid recipe;
    a choice by number is taken; the end of input aborts with nothing written."""
    r = subprocess.run(
        [*cai_tui(), "init", "--plain"], input="\n" * 400, capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert "no terminal: one question per line" in r.stdout and "\x1b[" not in r.stdout  # no cursor control
    assert "  *1) " in r.stdout or "  *2) " in r.stdout  # numbered choices, the default marked
    written = tmp_path / "cai-recipe.yaml"
    v = subprocess.run([*cai_tui(), "recipe", "validate", str(written)], capture_output=True, text=True, timeout=60)
    assert v.returncode == 0, v.stdout + v.stderr

    # the first stage's menu answered by number: 2 = skip the stage, then Enter for the rest; an invalid number again
    r = subprocess.run(
        [*cai_tui(), "init", "--plain", "-o", "two.yaml"],
        input="9\n2\n" + "\n" * 400,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-2000:]
    assert "give a number from 1 to" in r.stdout and (tmp_path / "two.yaml").is_file()

    # input ends before the questions do: aborted, nothing written
    r = subprocess.run(
        [*cai_tui(), "init", "--plain", "-o", "short.yaml"],
        input="\n\n",
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 130 and "nothing was written" in r.stdout and not (tmp_path / "short.yaml").exists()


def test_bad_flow_and_language_are_refused_with_the_choices(tmp_path: Path) -> None:
    r = subprocess.run([*cai_tui(), "init", "--plain", "--flow", "kata"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "use one of cai, kata-virtcca" in r.stderr
    r = subprocess.run([*cai_tui(), "init", "--plain", "--lang", "fr"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "use en or zh" in r.stderr


def test_the_wizard_opens_on_a_new_recipe_and_ctrl_s_saves_to_the_output(tmp_path: Path) -> None:
    out = tmp_path / "new.yaml"
    term = Term(
        ["init", "--flow", "kata-virtcca", "-o", str(out)], cwd=tmp_path, env={"XDG_CONFIG_HOME": str(tmp_path)}
    )
    try:
        term.wait(lambda: "kata-virtcca" in term.text(), timeout=20)
        term.wait_quiet(0.5)
        assert not out.exists()
        term.send("\x13")  # Ctrl+S: the recipe's file is the -o path, no Save-as question
        term.wait(out.exists, timeout=10)
        term.wait_quiet(0.3)
        term.send("q")
        assert term.finish() == 0
    finally:
        term.close()
    assert load_recipe(out).recipe.flow == "kata-virtcca"
    assert _validate(out).returncode == 0


def test_the_wizard_refuses_an_existing_output(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("keep\n", encoding="utf-8")
    r = subprocess.run([*cai_tui(), "init", "-o", "x.yaml"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert r.returncode == 2 and "already exists" in r.stderr and "cai-tui --recipe x.yaml" in r.stderr
    assert (tmp_path / "x.yaml").read_text(encoding="utf-8") == "keep\n"


def test_plain_mode_words_exist_in_both_languages_with_the_same_placeholders() -> None:
    for key, texts in STRINGS.items():
        assert set(texts) == {"en", "zh"}, key
        assert set(re.findall(r"\{(\w+)\}", texts["en"])) == set(re.findall(r"\{(\w+)\}", texts["zh"])), key
