"""The core never imports the UI (textual/questionary); front ends sit on top of it."""

import ast
import subprocess
import sys

from tests.helpers import REPO

PKG = REPO / "cai_tui"
FRONT_ENDS = {"tui", "plain", "cli"}
UI_LIBS = {"textual", "questionary"}


def _core_files():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG)
        if rel.parts[0] in FRONT_ENDS:
            continue
        yield path


def _imports(path):
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, 0
        elif isinstance(node, ast.ImportFrom):
            yield node.module or "", node.level


FRONT_END_MODULES = ("cai_tui.tui", "cai_tui.plain", "cai_tui.cli")  # package boundaries: cai_tui.clients is core


def test_core_sources_do_not_import_ui():
    bad = []
    for path in _core_files():
        for name, level in _imports(path):
            top = name.split(".")[0]
            if (level == 0 and top in UI_LIBS) or (
                level == 0 and any(name == f or name.startswith(f + ".") for f in FRONT_END_MODULES)
            ):
                bad.append(f"{path.relative_to(REPO)} imports {name}")
            if level > 0 and top in FRONT_ENDS:
                bad.append(f"{path.relative_to(REPO)} imports .{name}")
    assert bad == []
    assert sum(1 for _ in _core_files()) > 30


def test_importing_every_core_module_loads_no_ui_library():
    modules = []
    for path in _core_files():
        rel = path.relative_to(REPO).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        if parts[-1] == "__main__":
            continue
        modules.append(".".join(parts))
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(sorted(n for n in {sorted(UI_LIBS)!r} if n in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_help_imports_no_heavy_library():
    """`cai-tui --help` stays fast: textual, pydantic, the SDKs etc. are imported only where used."""
    code = (
        "import sys\nsys.argv=['cai-tui','--help']\nfrom cai_tui.cli.main import main\nmain()\n"
        "heavy={'textual','pydantic','oss2','docker','paramiko','alibabacloud_kms20160120','httpx','cryptography','ruamel','questionary'}\n"
        "print(sorted(h for h in heavy if h in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
