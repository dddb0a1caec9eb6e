"""The data folders ship inside the wheel and are found through importlib.resources from an installed wheel."""

import json
import subprocess
import sys
import zipfile

import pytest

from tests.helpers import REPO


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    wheels = list(out.glob("cai_tui-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_contains_data_folders(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for needed in ("cai_tui/_data/screens/cai/01-model-source.yaml", "cai_tui/_data/recipes/lab-demo.yaml"):
        assert needed in names
    assert any(n.startswith("cai_tui/_data/screens/kata-virtcca/") for n in names)
    assert any(n.startswith("cai_tui/_data/assets/") for n in names)
    entry = [n for n in names if n.endswith("entry_points.txt")]
    assert "cai-tui = cai_tui.cli.main:main" in zipfile.ZipFile(wheel).read(entry[0]).decode()


def test_installed_wheel_finds_its_data(wheel, tmp_path):
    target = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    code = (
        f"import sys; sys.path.insert(0, {str(target)!r})\n"
        "import cai_tui, json\n"
        "from cai_tui.resources import data_dir\n"
        "from cai_tui.cli.main import main\n"
        "print(json.dumps([cai_tui.__file__, str(data_dir('screens')), str(data_dir('recipes'))]))\n"
        "sys.argv=['cai-tui','stages','--json']\nmain()\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    first, rest = r.stdout.split("\n", 1)
    paths = json.loads(first)
    assert all(p.startswith(str(target)) for p in paths), paths
    doc = json.loads(rest)
    assert doc["schema"] == "cai-tui/stages/v1" and len(doc["flows"]) == 2
