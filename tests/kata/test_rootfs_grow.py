"""rootfs.grow (KATA-1.3) and its undo on the lab image: real cp/qemu-img/e2fsck/resize2fs, a real small tmpfs for the
free-space refusal, a real loop mount for the mounted refusal."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from cai_tui.kata import rootfs_grow as gr
from cai_tui.lab.kata.rootfs_image import make_lab_rootfs

from .test_rootfs_lab import RootfsLab, cli, mounts_below, rootfs_lab_fixture, write_recipe  # noqa: F401 (fixture)

MIB = 1024 * 1024


def fs_bytes(image: Path) -> int:
    header = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True, check=True).stdout
    count = int(re.search(r"^Block count:\s+(\d+)", header, re.M).group(1))  # type: ignore[union-attr]
    size = int(re.search(r"^Block size:\s+(\d+)", header, re.M).group(1))  # type: ignore[union-attr]
    return count * size


def test_grow_resizes_image_and_filesystem_keeps_backup_and_undo_restores_byte_for_byte(rootfs_lab: RootfsLab) -> None:
    image = rootfs_lab.image
    before = gr.sha256(str(image))
    r = rootfs_lab.run("grow")
    assert r.returncode == 0, r.stderr
    # the plan came first, with the exact commands
    plan_at = r.stderr.index("plan of `cai-tui kata rootfs grow`")
    assert r.stderr.index(f"$ qemu-img resize -f raw {image} +1G") > plan_at
    assert r.stderr.index("Image resized.") > r.stderr.index(f"$ resize2fs {image}")
    assert image.stat().st_size == 64 * MIB + 1024 * MIB
    assert fs_bytes(image) == 64 * MIB + 1024 * MIB  # the file system fills the grown image
    fsck = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout
    backup = Path(f"{image}.bak")
    assert gr.sha256(str(backup)) == before
    record = json.loads((rootfs_lab.state / "kata-rootfs-grow.json").read_text())
    assert record["sha256_before"] == before and record["size_after"] == image.stat().st_size

    again = rootfs_lab.run("grow")  # idempotent: the record says it is done
    assert again.returncode == 0 and "already grown" in again.stdout
    assert image.stat().st_size == 64 * MIB + 1024 * MIB

    undo = rootfs_lab.run("undo")
    assert undo.returncode == 0, undo.stderr
    assert f"restored {image} from {backup}" in undo.stdout
    assert gr.sha256(str(image)) == before and not backup.exists()
    assert not (rootfs_lab.state / "kata-rootfs-grow.json").exists()
    twice = rootfs_lab.run("undo")
    assert (twice.returncode, twice.stdout.strip()) == (0, "nothing to undo")


def test_grow_refuses_a_mounted_image(rootfs_lab: RootfsLab) -> None:
    size = rootfs_lab.image.stat().st_size
    assert rootfs_lab.run("mount").returncode == 0
    r = rootfs_lab.run("grow")
    assert r.returncode == 1
    assert f"{rootfs_lab.image} is mounted (/dev/loop" in r.stderr
    assert "e2fsck and resize2fs must not run on a mounted file system" in r.stderr
    assert not Path(f"{rootfs_lab.image}.bak").exists()
    assert rootfs_lab.run("unmount").returncode == 0
    assert rootfs_lab.image.stat().st_size == size and fs_bytes(rootfs_lab.image) == size


def test_grow_refuses_when_the_images_file_system_is_short(rootfs_lab: RootfsLab) -> None:
    small = rootfs_lab.dir / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "cai-rootfs-test", str(small)], check=True)
    try:
        image = make_lab_rootfs(small / "rootfs.img", 16)
        room = gr.room(str(image), 1024 * MIB)  # the real statvfs of the 40 MiB tmpfs
        assert room.free < 40 * MIB and room.need >= 1024 * MIB and not room.ok
        answers = json.loads(rootfs_lab.recipe.read_text())["answers"]
        answers["rootfs"]["image"] = str(image)
        recipe = write_recipe(small, answers)
        before = gr.sha256(str(image))
        r = subprocess.run(
            [*cli(), "kata", "rootfs", "grow", "--recipe", str(recipe)],
            capture_output=True,
            text=True,
            env={**os.environ, "CAI_TUI_STATE_DIR": str(rootfs_lab.state)},
        )
        assert r.returncode == 1, r.stderr
        assert f"not enough free space in {small} for the backup and +1 GiB" in r.stderr
        assert "lower answers.rootfs.grow_gib" in r.stderr
        assert gr.sha256(str(image)) == before and not Path(f"{image}.bak").exists()
        assert not (rootfs_lab.state / "kata-rootfs-grow.json").exists()
    finally:
        subprocess.run(["umount", str(small)], check=True)
    assert mounts_below(rootfs_lab.dir) == []


def test_e2fsck_exit_codes_0_and_1_are_success() -> None:
    assert [rc for rc in range(9) if gr._e2fsck_ok(rc)] == [0, 1]


def test_grow_of_a_missing_image_is_an_input_error(rootfs_lab: RootfsLab) -> None:
    rootfs_lab.image.unlink()
    r = rootfs_lab.run("grow")
    assert r.returncode == 2
    assert f"rootfs.image {rootfs_lab.image}: no such file (set answers.rootfs.image)" in r.stderr
    assert "Traceback" not in r.stderr


def test_e2fsck_exit_1_errors_corrected_lets_the_grow_go_on(rootfs_lab: RootfsLab) -> None:
    image = rootfs_lab.image
    with open(image, "r+b") as f:  # the primary superblock wiped: e2fsck -y repairs it from a backup (exit 1)
        f.seek(1024)
        f.write(bytes(1024))
    r = rootfs_lab.run("grow")
    assert r.returncode == 0, r.stderr
    assert "***** FILE SYSTEM WAS MODIFIED *****" in r.stderr
    assert r.stderr.index("FILE SYSTEM WAS MODIFIED") < r.stderr.index("→ $ resize2fs")
    assert fs_bytes(image) == 64 * MIB + 1024 * MIB
    assert subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True).returncode == 0


def test_a_failed_e2fsck_stops_the_grow_and_undo_puts_the_backup_back(rootfs_lab: RootfsLab) -> None:
    image = rootfs_lab.image
    with open(image, "r+b") as f:  # no file system at all: e2fsck exits 8 (operational error)
        f.write(bytes(image.stat().st_size))
    before = gr.sha256(str(image))
    r = rootfs_lab.run("grow")
    assert r.returncode == 1, r.stderr
    assert f"`e2fsck -f -y {image}` exited 8" in r.stderr
    assert f"`cai-tui kata rootfs undo` puts {image}.bak back" in r.stderr
    assert "→ $ resize2fs" not in r.stderr  # stopped there
    assert image.stat().st_size == 64 * MIB + 1024 * MIB
    undo = rootfs_lab.run("undo")
    assert undo.returncode == 0, undo.stderr
    assert gr.sha256(str(image)) == before and image.stat().st_size == 64 * MIB
