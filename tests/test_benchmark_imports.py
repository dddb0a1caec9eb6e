"""benchmarks/ and scripts/ are not run by the suite, so a moved module would break them silently (a split of issue 15
left `cai_tui.actions.oss_client` in one benchmark): every name they import from cai_tui must resolve."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.helpers import REPO

FILES = sorted(p for folder in ("benchmarks", "scripts") for p in (REPO / folder).rglob("*.py"))


def _imports(path: Path) -> list[tuple[str, str]]:
    return [
        (node.module, alias.name)
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("cai_tui")
        for alias in node.names
    ]


def test_there_are_files_to_check() -> None:
    assert len(FILES) >= 5 and any(_imports(p) for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_every_cai_tui_name_resolves(path: Path) -> None:
    missing = []
    for module, name in _imports(path):
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            missing.append(f"{module}: {e}")
            continue
        if not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert missing == [], f"{path.relative_to(REPO)} imports what cai_tui no longer has: {missing}"
