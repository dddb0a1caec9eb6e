"""kata.hook after KATA-1.7: with the image unmounted (mount_dir empty) the check reads rootfs.img itself with debugfs,
so the guard of the hook step proves the hook in the image the guest boots, not "unknown"."""

from __future__ import annotations

import asyncio

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import run_checks
from cai_tui.recipe import load_recipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget

from .test_rootfs_lab import RootfsLab, mounts_below, rootfs_lab_fixture  # noqa: F401 (fixture)


def _hook(lab: RootfsLab) -> tuple[str, str, str]:
    rec = load_recipe(lab.recipe).recipe
    ctx = CheckContext(recipe=rec, targets={"host": LocalTarget()}, redactor=Redactor(), timeout=20.0)
    (o,) = asyncio.run(run_checks([all_checks()["kata.hook"]], ctx, timeout=20.0))
    return o.result.status, o.result.summary, " | ".join(e.observed for e in o.result.evidence)


def test_hook_check_reads_the_unmounted_image(rootfs_lab: RootfsLab) -> None:
    status, summary, evidence = _hook(rootfs_lab)
    assert status == "fail" and "is not in the guest rootfs" in summary and "debugfs" in evidence
    r = rootfs_lab.run("add-hook")
    assert r.returncode == 0, r.stderr
    assert mounts_below(rootfs_lab.dir) == []  # add-hook mounted for its run only
    status, summary, evidence = _hook(rootfs_lab)
    assert status == "pass", summary
    assert "unmounted, read with debugfs" in summary and "mode 0755" in summary
