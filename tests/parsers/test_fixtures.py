"""The hand-made fixtures say where they come from, are listed in SOURCES.md, and are used by a test."""

import pytest

from tests.parsers._captures import CAPTURES, FIXTURES, capture, fixture, load

FIXTURE_FILES = sorted(p.name for p in FIXTURES.iterdir() if p.name != "SOURCES.md")
TESTS = "\n".join(p.read_text("utf-8") for p in FIXTURES.parent.parent.joinpath("parsers").glob("test_*.py"))


def test_there_are_fixtures():
    assert len(FIXTURE_FILES) >= 40


@pytest.mark.parametrize("name", FIXTURE_FILES)
def test_fixture_has_provenance_and_is_listed_and_used(name):
    c = fixture(name)
    assert len(c.provenance) > 40 and c.command
    sources = (FIXTURES / "SOURCES.md").read_text("utf-8")
    stem = name.split(".")[0]
    assert name in sources or (stem.startswith("cc-f-i") and "cc-f-i0..3.txt" in sources), f"{name} not in SOURCES.md"
    used = name in TESTS or (stem.startswith("cc-f-i") and 'fixture(f"cc-f-i{i}.txt")' in TESTS)
    assert used, f"no test loads {name}"


def test_real_captures_load_unmodified():
    names = sorted(p.name for p in CAPTURES.iterdir() if p.suffix == ".txt")
    assert "nvidia-smi-q.txt" in names
    for name in names:
        c = capture(name)
        assert c.provenance == "" and c.rc is not None


def test_loader_strips_command_and_rc_lines(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("## from here\n# $ echo hi\nhi\n# not a comment to strip\n# rc=3\n", "utf-8")
    c = load(path)
    assert (c.command, c.body, c.rc, c.provenance) == ("echo hi", "hi\n# not a comment to strip\n", 3, "from here")
