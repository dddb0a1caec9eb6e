"""Pilot tests of the Textual wizard; every app is built by the same factory the CLI uses."""

from __future__ import annotations

import pytest

from cai_tui.stages import FlowStages, load_all


@pytest.fixture(scope="session")
def flows() -> dict[str, FlowStages]:
    return load_all()
