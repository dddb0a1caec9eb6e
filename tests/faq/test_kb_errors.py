"""Bad FAQ files give one clear ``file:line: field: message`` line per problem, all at once."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from cai_tui.faq import FaqError, load_kb

GOOD = """\
entries:
  - id: {id}
    title: {{en: Something fails, zh: 某项失败}}
    applies_to: {{services: [oss]}}
    patterns:
      - log: '{regex}'
    cause: {{en: It is broken., zh: 它坏了。}}
    fix: {{en: Repair it (CAI-4.1)., zh: 修复它（CAI-4.1）。}}
    source: {{kind: upstream, ref: some/repo path.rs}}
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(folder: Path) -> list[str]:
    with pytest.raises(FaqError) as info:
        load_kb(folder)
    return str(info.value).splitlines()


def test_a_good_file_loads(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="thing-broken", regex="thing broke"))
    kb = load_kb(tmp_path)
    assert kb.ids() == ["thing-broken"]
    assert kb.origin["thing-broken"] == f"{tmp_path / 'a.yaml'}:2"


def test_bad_regex_names_the_entry_the_regex_and_the_line(tmp_path):
    path = write(tmp_path, "a.yaml", GOOD.format(id="thing-broken", regex="unclosed (group"))
    (line,) = problems(tmp_path)
    assert line.startswith(f"{path}:6: thing-broken.patterns[0].log: ")
    assert "invalid regex 'unclosed (group'" in line and "missing )" in line


def test_regex_matching_everything_is_refused(tmp_path):
    write(tmp_path, "a.yaml", GOOD.format(id="thing-broken", regex="x*"))
    (line,) = problems(tmp_path)
    assert "thing-broken.patterns[0].log" in line and "matches the empty string" in line


def test_duplicate_id_across_files(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD.format(id="thing-broken", regex="one"))
    b = write(tmp_path, "b.yaml", GOOD.format(id="thing-broken", regex="two"))
    (line,) = problems(tmp_path)
    assert line == f"{b}:2: thing-broken.id: duplicate id 'thing-broken'; first defined at {a}:2"


def test_missing_chinese_and_english_copied_into_zh(tmp_path):
    path = write(
        tmp_path,
        "a.yaml",
        GOOD.format(id="thing-broken", regex="x")
        .replace("fix: {en: Repair it (CAI-4.1)., zh: 修复它（CAI-4.1）。}", "fix: {en: Repair it (CAI-4.1).}")
        .replace("zh: 它坏了。", "zh: It is broken."),
    )
    lines = problems(tmp_path)
    assert f"{path}:8: thing-broken.fix.zh: required; add it" in lines
    assert any(ln.startswith(f"{path}:7: thing-broken.cause.zh: must be Chinese text") for ln in lines)


def test_unknown_key_suggests_the_known_one(tmp_path):
    path = write(tmp_path, "a.yaml", GOOD.format(id="thing-broken", regex="x").replace("    cause:", "    cuase:"))
    lines = problems(tmp_path)
    assert f"{path}:7: thing-broken.cuase: unknown key 'cuase'; did you mean 'cause'?" in lines
    assert f"{path}:2: thing-broken.cause: required; add it" in lines


def test_pattern_kinds_services_and_ids_are_checked(tmp_path):
    text = """\
    entries:
      - id: Bad_Id
        title: {en: T, zh: 标题}
        patterns:
          - {log: 'a', exit_code: 3}
          - {health: unhealthy}
          - {check: NotDotted}
          - {log: 'b', service: oss}
        applies_to: {services: [osss]}
        cause: {en: C, zh: 原因}
        fix: {en: F, zh: 办法}
        source: {kind: blog, ref: somewhere}
    """
    path = write(tmp_path, "a.yaml", text)
    lines = problems(tmp_path)
    joined = "\n".join(lines)
    assert f"{path}:2: Bad_Id.id: FAQ ids are lower-case words joined by -" in joined
    assert f"{path}:5: Bad_Id.patterns[0]: a pattern is exactly one of log:, exit_code:, health:, check:" in joined
    assert f"{path}:7: Bad_Id.patterns[2].check: check ids are dotted" in joined
    assert f"{path}:8: Bad_Id.patterns[3]: service: goes with exit_code: or health: only" in joined
    assert f"{path}:9: Bad_Id.applies_to.services[0]: " in joined and "'osss'" in joined
    assert f"{path}:12: Bad_Id.source.kind: " in joined and "'seed', 'upstream' or 'cai-tui'" in joined


def test_state_pattern_needs_a_service(tmp_path):
    text = GOOD.format(id="thing-broken", regex="x").replace(
        "applies_to: {services: [oss]}", "applies_to: {checks: [oss.bucket]}"
    )
    write(tmp_path, "a.yaml", text.replace("      - log: 'x'", "      - health: exited"))
    (line,) = problems(tmp_path)
    assert "thing-broken: patterns[0]: an exit code or a state means nothing without the service" in line


def test_file_level_problems_are_all_reported(tmp_path):
    bad_yaml = write(tmp_path, "a.yaml", "entries:\n  - id: x\n   title: [\n")
    not_mapping = write(tmp_path, "b.yaml", "- just a list\n")
    extra = write(tmp_path, "c.yaml", GOOD.format(id="thing-broken", regex="x") + "version: 2\n")
    empty = write(tmp_path, "d.yaml", "entries: []\n")
    lines = problems(tmp_path)
    assert any(ln.startswith(f"{bad_yaml}:") and "malformed YAML" in ln for ln in lines)
    assert f"{not_mapping}:1: an FAQ file is a mapping with one key, entries: [ … ]" in lines
    assert f"{extra}:10: version: unknown key 'version'; only entries:" in lines
    assert f"{empty}:1: entries: a non-empty list of FAQ entries" in lines


def test_missing_or_empty_folder(tmp_path):
    assert problems(tmp_path / "nope") == [f"{tmp_path / 'nope'}: no FAQ folder here"]
    assert problems(tmp_path) == [f"{tmp_path}: no FAQ files (*.yaml) in this folder"]


def test_unknown_check_ids_are_listed_not_fatal(tmp_path):
    text = GOOD.format(id="thing-broken", regex="x").replace(
        "applies_to: {services: [oss]}", "applies_to: {services: [oss], checks: [oss.bucket, future.check]}"
    )
    write(tmp_path, "a.yaml", text)
    kb = load_kb(tmp_path)
    assert kb.unknown_checks == ("future.check",)
