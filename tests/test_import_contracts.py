"""The dependency rules of pyproject.toml's [tool.importlinter] hold (front ends -> engine -> core -> clients; the
core never imports a front end, a UI library, the lab or the labstack), and the contracts do catch a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).with_name("lint-imports")
    if not exe.exists():
        pytest.fail(f"{exe} is missing: install the test extra (pip install -e '.[test]'), which has import-linter")
    return subprocess.run(
        [str(exe), "--no-cache", "--no-logo"], capture_output=True, text=True, cwd=cwd, timeout=300, env=_env(cwd)
    )


def _env(cwd: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(cwd), "COLUMNS": "250"}  # the package under cwd; one line a contract


def test_the_contracts_are_kept() -> None:
    r = _lint(REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Contracts: 3 kept, 0 broken." in r.stdout, r.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("checks/base.py", "from ..tui import app as _breach", "The core and the engine never import a front end"),
        ("render/__init__.py", "import textual as _breach", "The core and the engine never import a front end"),
        ("troubleshoot/rank.py", "from ..lab import faults as _breach", "The core and the engine never import the lab"),
        ("clients/kbs.py", "from ..checks import registry as _breach", "Front ends -> engine -> core -> clients"),
    ],
)
def test_a_breach_is_caught(tmp_path: Path, module: str, line: str, contract: str) -> None:
    """A copy of the package with one forbidden import added: lint-imports fails and names the contract."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "cai_tui", tmp_path / "cai_tui", ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "cai_tui" / module
    target.write_text(target.read_text() + f"\n{line}  # noqa\n")
    r = _lint(tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    broken = next(ln for ln in r.stdout.splitlines() if ln.startswith(contract))
    assert "BROKEN" in broken, r.stdout


def test_every_package_has_its_place_in_the_contracts() -> None:
    """A new top-level package or module of cai_tui must be placed in a layer (or be the lab/labstack, which sit
    outside the layers) and, unless it is a front end, be bound by both forbidden contracts: otherwise it would escape
    the rules silently."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    contracts = {c["id"]: c for c in config["contracts"]}
    in_layers = {name.strip() for layer in contracts["layers"]["layers"] for name in layer.replace("|", ":").split(":")}
    front_ends = {"cai_tui.cli", "cai_tui.tui", "cai_tui.plain"}
    labs = {"cai_tui.lab", "cai_tui.labstack"}
    found = {
        f"cai_tui.{p.stem if p.suffix == '.py' else p.name}"
        for p in (REPO / "cai_tui").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())
    }
    assert found - in_layers - labs == set(), "place these in [tool.importlinter] layers"
    assert found - front_ends - set(contracts["core-no-front-end"]["source_modules"]) == set()
    assert found - front_ends - labs - set(contracts["core-no-lab"]["source_modules"]) == set()
