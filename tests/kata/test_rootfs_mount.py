"""rootfs.mount / enter / add-hook / unmount on the lab image: loop and fuse2fs mounts, the pseudo-filesystems,
unmounting in reverse order, the hook read back from the unmounted image, and a SIGTERM midway leaving no mount."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cai_tui.kata.rootfs_mounts import PSEUDO
from cai_tui.recipe import load_recipe
from cai_tui.render import registry

from .test_rootfs_lab import RootfsLab, cli, debugfs, loops_of, mounts_below, rootfs_lab_fixture  # noqa: F401 (fixture)


def fstypes(directory: Path) -> list[tuple[str, str, str]]:
    root = os.path.realpath(directory)
    rows = []
    for line in Path("/proc/mounts").read_text().splitlines():
        _src, mp, fstype, opts = line.split()[:4]
        if mp == root or mp.startswith(root + "/"):
            rows.append((mp.removeprefix(root), fstype, opts))
    return rows


EXPECTED = [("sys", "sysfs"), ("proc", "proc"), ("tmp", "tmpfs"), ("dev", "devtmpfs"), ("dev/pts", "devpts")]


def test_mount_by_loop_binds_pseudo_filesystems_and_unmount_goes_in_reverse(rootfs_lab: RootfsLab) -> None:
    r = rootfs_lab.run("mount", "--method", "loop")
    assert r.returncode == 0, r.stderr
    assert "with a loop device: /dev/loop" in r.stderr
    planned = [ln.removeprefix("  $ ") for ln in r.stderr.splitlines() if ln.startswith("  $ ")]
    ran = [ln.removeprefix("→ $ ") for ln in r.stderr.splitlines() if ln.startswith("→ $ ")]
    assert planned == ran and len(ran) == 7  # the plan is exactly what runs (the image, 5 mounts, --make-slave)
    rows = fstypes(rootfs_lab.mount_dir)
    assert [(mp, t) for mp, t, _o in rows] == [("", "ext4")] + [(f"/{sub}", t) for sub, t in EXPECTED]
    opts = {mp: o.split(",") for mp, _t, o in rows}
    assert "ro" in opts["/sys"] and "ro" in opts["/proc"] and "ro" in opts["/dev"]
    assert [s for s, _a in PSEUDO] == [s for s, _t in EXPECTED]
    record = json.loads((rootfs_lab.state / "kata-rootfs-mounts.json").read_text())
    mnt = os.path.realpath(rootfs_lab.mount_dir)
    assert record["method"] == "loop" and record["temporary"] is False
    assert record["mounts"] == [mnt] + [f"{mnt}/{sub}" for sub, _t in EXPECTED]
    assert loops_of(rootfs_lab.image)

    enter = rootfs_lab.run("enter")  # uses the recorded mounts and leaves them
    assert enter.returncode == 0 and "using the mounts of rootfs.mount (loop)" in enter.stderr
    assert "\nok\n" in enter.stderr and f"chroot {rootfs_lab.mount_dir} /bin/bash" in enter.stdout
    assert len(mounts_below(rootfs_lab.dir)) == 6

    again = rootfs_lab.run("mount")
    assert again.returncode == 0 and "already mounted" in again.stdout

    u = rootfs_lab.run("unmount")
    assert u.returncode == 0, u.stderr
    order = [ln.removeprefix("→ unmounted ") for ln in u.stderr.splitlines() if ln.startswith("→ unmounted ")]
    assert order == list(reversed(record["mounts"]))
    assert mounts_below(rootfs_lab.dir) == [] and loops_of(rootfs_lab.image) == ""
    assert not (rootfs_lab.state / "kata-rootfs-mounts.json").exists()
    nothing = rootfs_lab.run("unmount")
    assert nothing.returncode == 0 and "nothing mounted by cai-tui" in nothing.stdout


def test_mount_by_fuse2fs_runs_the_chroot_and_unmounts(rootfs_lab: RootfsLab) -> None:
    r = rootfs_lab.run("mount", "--method", "fuse2fs")
    assert r.returncode == 0, r.stderr
    assert "with fuse2fs (a FUSE mount)" in r.stderr
    rows = fstypes(rootfs_lab.mount_dir)
    assert rows[0][0] == "" and rows[0][1].startswith("fuse")
    assert [mp for mp, _t, _o in rows[1:]] == [f"/{sub}" for sub, _t in EXPECTED]
    assert loops_of(rootfs_lab.image) == ""  # no loop device involved
    enter = rootfs_lab.run("enter")
    assert enter.returncode == 0 and "\nok\n" in enter.stderr
    assert rootfs_lab.run("unmount").returncode == 0
    assert mounts_below(rootfs_lab.dir) == []


def test_add_hook_mounts_for_its_run_writes_0755_hook_and_leaves_nothing_mounted(rootfs_lab: RootfsLab) -> None:
    r = rootfs_lab.run("add-hook")
    assert r.returncode == 0, r.stderr
    assert mounts_below(rootfs_lab.dir) == [] and loops_of(rootfs_lab.image) == ""
    hook = "/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
    stat = debugfs(rootfs_lab.image, f"stat {hook}")
    assert "Type: regular    Mode:  0755" in stat
    expected = registry.get("kata-hook").render(load_recipe(rootfs_lab.recipe).recipe).text
    assert debugfs(rootfs_lab.image, f"cat {hook}") == expected
    assert expected.startswith("#!/bin/bash -x\n")


def test_enter_without_mount_cleans_up_its_temporary_mounts(rootfs_lab: RootfsLab) -> None:
    r = rootfs_lab.run("enter", "--method", "fuse2fs")
    assert r.returncode == 0, r.stderr
    assert f"$ fuse2fs -o rw {rootfs_lab.image} {rootfs_lab.mount_dir}\n" in r.stderr  # the plan names the method
    assert "note: mounts with fuse2fs: --method fuse2fs" in r.stderr
    assert r.stderr.index("$ umount " + str(rootfs_lab.mount_dir)) < r.stderr.index("→ $ fuse2fs")  # plan first
    assert "\nok\n" in r.stderr
    assert mounts_below(rootfs_lab.dir) == []
    assert not (rootfs_lab.state / "kata-rootfs-mounts.json").exists()


def test_sigterm_while_the_chroot_command_runs_leaves_no_mount(rootfs_lab: RootfsLab) -> None:
    env = {**os.environ, "CAI_TUI_STATE_DIR": str(rootfs_lab.state), "CAI_LAB_INSTALLER_SLEEP": "60"}
    env.pop("CAI_TUI_EVENTS", None)
    proc = subprocess.Popen(
        [*cli(), "kata", "rootfs", "install-driver", "--recipe", str(rootfs_lab.recipe)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    seen: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        for line in proc.stdout:  # lines arrive while the installer runs: live output
            seen.append(line)
            if "sleeping 60 s" in line or time.monotonic() > deadline:
                break
        assert any("sleeping 60 s" in ln for ln in seen), "".join(seen)
        assert len(mounts_below(rootfs_lab.dir)) == 6  # midway: the image and its pseudo-filesystems
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "".join(seen) + rest
    assert proc.returncode == 130, out
    assert "interrupted: rootfs install-driver stopped; the mounts it made are undone" in out
    assert mounts_below(rootfs_lab.dir) == [], Path("/proc/mounts").read_text()
    assert loops_of(rootfs_lab.image) == ""
    assert not (rootfs_lab.state / "kata-rootfs-mounts.json").exists()
    mnt = os.path.realpath(rootfs_lab.mount_dir)
    for p in Path("/proc").iterdir():  # the installer (and its sleep) did not outlive the run
        if p.name.isdigit():
            try:
                assert not os.readlink(p / "root").startswith(mnt), (p / "cmdline").read_text()
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue


def test_add_hook_without_a_grow_backup_is_undone_from_its_record(rootfs_lab: RootfsLab) -> None:
    hook = "/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
    previous = rootfs_lab.dir / "old-hook"
    previous.write_text("#!/bin/sh\necho the user's own hook\n")
    cmds = rootfs_lab.dir / "debugfs.cmds"
    cmds.write_text(
        "mkdir /usr/share\nmkdir /usr/share/oci\nmkdir /usr/share/oci/hooks\nmkdir /usr/share/oci/hooks/prestart\n"
        f"cd /usr/share/oci/hooks/prestart\nwrite {previous} nvidia-container-toolkit.sh\n"
        f"sif {hook} mode 0100700\n"
    )
    subprocess.run(["debugfs", "-w", "-f", str(cmds), str(rootfs_lab.image)], check=True, capture_output=True)
    assert debugfs(rootfs_lab.image, f"cat {hook}") == previous.read_text()

    r = rootfs_lab.run("add-hook")
    assert r.returncode == 0, r.stderr
    assert "existed; replaced" in r.stderr and debugfs(rootfs_lab.image, f"cat {hook}").startswith("#!/bin/bash -x")
    again = rootfs_lab.run("add-hook")
    assert again.returncode == 0 and "is in place (mode 0755); nothing changed" in again.stdout
    undo = rootfs_lab.run("undo")
    assert undo.returncode == 0, undo.stderr
    assert f"put the previous {hook} back in {rootfs_lab.image}" in undo.stdout
    assert debugfs(rootfs_lab.image, f"cat {hook}") == previous.read_text()
    assert "Mode:  0700" in debugfs(rootfs_lab.image, f"stat {hook}")
    assert mounts_below(rootfs_lab.dir) == []
    assert rootfs_lab.run("undo").stdout.strip() == "nothing to undo"


def test_add_hook_undo_removes_a_hook_that_was_not_there(rootfs_lab: RootfsLab) -> None:
    hook = "/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
    assert rootfs_lab.run("add-hook").returncode == 0
    undo = rootfs_lab.run("undo")
    assert undo.returncode == 0 and f"removed the hook {hook}" in undo.stdout
    assert (
        "File not found by ext2_lookup"
        in subprocess.run(
            ["debugfs", "-R", f"stat {hook}", str(rootfs_lab.image)], capture_output=True, text=True
        ).stderr
    )


@pytest.mark.slow  # the busy mount is retried for 5 s before it is reported
def test_unmount_of_a_busy_rootfs_names_the_holder_keeps_the_record_and_succeeds_later(rootfs_lab: RootfsLab) -> None:
    assert rootfs_lab.run("mount").returncode == 0
    holder = subprocess.Popen(["sleep", "60"], cwd=rootfs_lab.mount_dir / "tmp")  # a shell left inside
    try:
        r = rootfs_lab.run("unmount")
        assert r.returncode == 1
        assert f"umount {os.path.realpath(rootfs_lab.mount_dir)}/tmp: " in r.stderr
        assert f"held by sleep (pid {holder.pid})" in r.stderr
        assert "then run `cai-tui kata rootfs unmount` again" in r.stderr
        record = json.loads((rootfs_lab.state / "kata-rootfs-mounts.json").read_text())
        mnt = os.path.realpath(rootfs_lab.mount_dir)
        assert record["mounts"] == [mnt, f"{mnt}/sys", f"{mnt}/proc", f"{mnt}/tmp"]  # dev/pts and dev went first
        assert mounts_below(rootfs_lab.dir) == record["mounts"]
    finally:
        holder.kill()
        holder.wait()
    again = rootfs_lab.run("unmount")
    assert again.returncode == 0, again.stderr
    assert mounts_below(rootfs_lab.dir) == [] and loops_of(rootfs_lab.image) == ""


def test_mounts_left_by_a_killed_run_are_cleaned_by_the_next_step(rootfs_lab: RootfsLab) -> None:
    from cai_tui.kata.rootfs_mounts import mount_all

    rec = mount_all(str(rootfs_lab.image), str(rootfs_lab.mount_dir), temporary=True)  # as a run SIGKILLed midway
    assert len(mounts_below(rootfs_lab.dir)) == 6 and rec.temporary
    r = rootfs_lab.run("enter")
    assert r.returncode == 0, r.stderr
    assert "warning: unmounting what a killed run left mounted under" in r.stderr
    assert "\nok\n" in r.stderr
    assert mounts_below(rootfs_lab.dir) == [] and loops_of(rootfs_lab.image) == ""
    assert not (rootfs_lab.state / "kata-rootfs-mounts.json").exists()
