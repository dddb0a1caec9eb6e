"""The stylesheet is found through data_dir (so it ships in the wheel), the factory checks its input,
and the core stays free of Textual."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cai_tui.resources import data_dir
from cai_tui.tui.app import css_path, make_app


def test_stylesheet_lives_in_assets() -> None:
    path = css_path()
    assert path == data_dir("assets") / "tui" / "app.tcss"
    assert path.is_file() and "#stage-list" in path.read_text(encoding="utf-8")


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="lang"):
        make_app(lang="fr")


def test_core_does_not_import_textual() -> None:
    code = (
        "import sys; import cai_tui.recipe, cai_tui.stages, cai_tui.resources; "
        "cai_tui.stages.load_all(); "
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
