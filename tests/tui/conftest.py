"""Pilot tests of the Textual wizard; every app is built by the same factory the CLI uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from cai_tui.stages import FlowStages, load_all


@pytest.fixture(scope="session")
def flows() -> dict[str, FlowStages]:
    return load_all()


@pytest.fixture(autouse=True)
def wizard_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own CAI_TUI_HOME: the recent recipes and the keymap of the person running the tests stay out."""
    home = tmp_path_factory.mktemp("cai-tui-home")
    monkeypatch.setenv("CAI_TUI_HOME", str(home))
    return home
