"""The rootfs doers' plans: the cai-tui lines and their undo, and the steps that cannot run here reported ``manual``
before anything starts (no dnf; an aarch64 image on this host without binfmt_misc for aarch64)."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from cai_tui.actions import registry
from cai_tui.engine.plan import plan_stage
from cai_tui.kata import rootfs_chroot as ch
from cai_tui.kata import rootfs_steps
from cai_tui.recipe import load_recipe
from cai_tui.stages.loader import load_all

from .test_rootfs_lab import RootfsLab, mounts_below, rootfs_lab_fixture  # noqa: F401 (fixture)

IDS = ("grow", "mount", "install_tools", "enter", "install_driver", "add_hook", "unmount")


# kata's rootfs is aarch64; on an aarch64 host the foreign image is x86_64
FOREIGN, FOREIGN_EM = ("aarch64", 183) if ch.host_machine() != "aarch64" else ("x86_64", 62)


def foreign_elf() -> bytes:
    """The first 64 bytes of an ELF executable of the foreign machine, enough for the architecture probe."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    return ident + struct.pack("<HHI", 2, FOREIGN_EM, 1) + bytes(64 - 16 - 8)


def make_foreign(lab: RootfsLab) -> None:
    stub = lab.dir / "sh-aarch64"
    stub.write_bytes(foreign_elf())
    for request in ("rm /bin/sh", f"write {stub} /bin/sh", "rm /usr/bin/env", "rm /bin/busybox"):
        subprocess.run(["debugfs", "-w", "-R", request, str(lab.image)], check=True, capture_output=True)


def test_each_action_is_one_cai_tui_line_with_its_undo(rootfs_lab: RootfsLab) -> None:
    loaded = load_recipe(rootfs_lab.recipe)
    for action in IDS:
        steps = registry.get(f"rootfs.{action}").plan(loaded)  # type: ignore[union-attr]
        assert len(steps) == 1, action
        s = steps[0]
        assert s.where == "host"
        if action == "install_tools":  # no dnf here: manual, with dnf's own line
            assert s.manual.startswith("dnf is not installed here")
            assert s.argv[:2] == ["dnf", f"--installroot={rootfs_lab.mount_dir}"]
            assert "--setopt=reposdir=/etc/yum.repos.d" in s.argv
            continue
        step = action.replace("_", "-")
        assert s.argv == ["cai-tui", "kata", "rootfs", step, "--recipe", str(rootfs_lab.recipe)], action
        assert s.manual == ""
        if action in ("enter", "unmount"):
            assert s.undo == ()
        else:
            assert s.undo == ("cai-tui", "kata", "rootfs", "undo", "--recipe", str(rootfs_lab.recipe))
        assert s.changes.startswith("nothing") == (action == "enter")
    grow = registry.get("rootfs.grow").plan(loaded)[0]  # type: ignore[union-attr]
    assert f"qemu-img resize -f raw {rootfs_lab.image} +1G" in grow.changes
    assert f"cp --sparse=always {rootfs_lab.image} {rootfs_lab.image}.bak" in grow.changes


def test_the_stage_plan_shows_install_tools_as_manual(rootfs_lab: RootfsLab) -> None:
    loaded = load_recipe(rootfs_lab.recipe)
    stage = load_all()["kata-virtcca"].stage("guest-rootfs")
    items = {it.name: it for it in plan_stage(stage, loaded)}
    assert items["rootfs.install_tools"].kind == "manual"
    assert items["rootfs.install_tools"].text.startswith(f"dnf --installroot={rootfs_lab.mount_dir} ")
    assert "manual: dnf is not installed here" in items["rootfs.install_tools"].title
    assert items["rootfs.grow"].kind == "action" and items["rootfs.grow"].undo_argv[3] == "undo"


def test_install_tools_cli_says_manual_exit_3_and_mounts_nothing(rootfs_lab: RootfsLab) -> None:
    r = rootfs_lab.run("install-tools")
    assert r.returncode == 3, r.stderr
    assert "manual: dnf is not installed here" in r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("manual: run this yourself: "))
    assert f"dnf --installroot={rootfs_lab.mount_dir} --setopt=reposdir=/etc/yum.repos.d install pciutils" in line
    assert mounts_below(rootfs_lab.dir) == []


def test_dnf_counts_as_runnable_with_dnf_on_path_and_a_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bindir, repos = tmp_path / "bin", tmp_path / "yum.repos.d"
    bindir.mkdir()
    repos.mkdir()
    (bindir / "dnf").write_text("#!/bin/sh\nexit 0\n")
    (bindir / "dnf").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    assert (
        ch.dnf_problem(str(repos))
        == f"{repos} has no .repo file: add openEuler's and nvidia-container-toolkit's repositories"
    )
    (repos / "openEuler.repo").write_text("[os]\n")
    assert ch.dnf_problem(str(repos)) == ""


def test_host_arch_image_chroots_and_a_foreign_one_is_manual_without_binfmt(
    rootfs_lab: RootfsLab, tmp_path: Path
) -> None:
    a = load_recipe(rootfs_lab.recipe).recipe.answers
    empty = tmp_path / "binfmt-off"
    empty.mkdir()
    assert rootfs_steps.plan("enter", a, binfmt_dir=str(empty)).manual == ""  # the lab image is this host's arch
    make_foreign(rootfs_lab)
    assert ch.guest_machine(str(rootfs_lab.image)) == (FOREIGN, f"/bin/sh in {rootfs_lab.image} (debugfs)")
    for step in ("enter", "install-driver"):
        p = rootfs_steps.plan(step, a, binfmt_dir=str(empty))
        assert p.manual.startswith(
            f"the rootfs is {FOREIGN} (/bin/sh in {rootfs_lab.image} (debugfs)) and this host is "
        )
        assert f"without a binfmt_misc entry for {FOREIGN}" in p.manual
    on = tmp_path / "binfmt-on"
    on.mkdir()
    (on / "status").write_text("enabled\n")
    (on / f"qemu-{FOREIGN}").write_text(f"enabled\ninterpreter /usr/libexec/qemu-binfmt/{FOREIGN}-binfmt-P\n")
    assert rootfs_steps.plan("enter", a, binfmt_dir=str(on)).manual == ""
    (on / f"qemu-{FOREIGN}").write_text("disabled\n")
    assert rootfs_steps.plan("enter", a, binfmt_dir=str(on)).manual != ""


def test_install_driver_on_a_foreign_image_cli_is_manual_with_the_chroot_command(rootfs_lab: RootfsLab) -> None:
    make_foreign(rootfs_lab)
    if ch.binfmt_runs(FOREIGN):
        pytest.fail(f"this host runs {FOREIGN} binaries through binfmt_misc: the manual case cannot be shown here")
    r = rootfs_lab.run("install-driver")
    assert r.returncode == 3, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("manual: run this yourself: "))
    assert (
        f"chroot {rootfs_lab.mount_dir} /home/NVIDIA-Linux-aarch64-550.127.08.run --kernel-source-path=/home/kernel/"
        in line
    )
    assert f"manual: the rootfs is {FOREIGN}" in r.stderr
    assert mounts_below(rootfs_lab.dir) == []  # said before anything started


def test_unknown_step_is_an_input_error(rootfs_lab: RootfsLab) -> None:
    from cai_tui.kata.rootfs_run import RootfsError

    with pytest.raises(RootfsError) as e:
        rootfs_steps.plan("shell", load_recipe(rootfs_lab.recipe).recipe.answers)
    assert e.value.exit_code == 2 and "unknown rootfs step 'shell'" in e.value.message
