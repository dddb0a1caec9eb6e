"""The vfio stage's guard checks read /sys and /dev under ``answers.gpu.sysroot`` (where the vfio doer writes: the
kata lab's fake tree) while the recipe's host is this machine, as in the kata lab's replay."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import run_checks
from cai_tui.cli.main import app
from cai_tui.lab.kata.sysfs import LAB_GPU_BDF, FakeSysfs, build_fake_sysfs
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget

GUARDS = ("gpu.vfio_bound", "gpu.iommu_group", "vfio.device_node")


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSysfs]:
    monkeypatch.setenv("CAI_TUI_STATE_DIR", str(tmp_path / "state"))
    with build_fake_sysfs(tmp_path / "root", "lab") as fake:
        yield fake


def _guards(sysroot: str | None) -> dict[str, str]:
    gpu = {"bdf": LAB_GPU_BDF, "sysroot": sysroot}
    rec = KataRecipe.model_validate({"flow": "kata-virtcca", "name": "t", "answers": {"gpu": gpu}})
    ctx = CheckContext(recipe=rec, targets={"host": LocalTarget()}, redactor=Redactor(), timeout=10.0)
    specs = [all_checks()[c] for c in GUARDS]
    return {o.id: o.result.status for o in asyncio.run(run_checks(specs, ctx, timeout=10.0))}


def test_guards_follow_the_recipe_sysroot_on_a_local_host(lab: FakeSysfs) -> None:
    assert _guards(str(lab.root))["gpu.vfio_bound"] == "fail"  # the fake GPU, still on nvidia
    r = CliRunner().invoke(app, ["kata", "vfio", "apply", "--sysroot", str(lab.root), "--bdf", LAB_GPU_BDF, "--yes"])
    assert r.exit_code == 0, r.output
    lab.settle()
    assert _guards(str(lab.root)) == dict.fromkeys(GUARDS, "pass")
    assert _guards(None)["gpu.vfio_bound"] != "pass"  # without the sysroot: this machine's own /sys (no such GPU)
