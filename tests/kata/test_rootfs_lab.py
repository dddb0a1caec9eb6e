"""The kata lab's rootfs image, and the fixture the other rootfs tests share (``rootfs_lab``): a small ext4 image with
busybox-static, the stand-in NVIDIA installer, a kata-virtcca recipe pointing at them, a private state directory.
Whatever a test leaves mounted under its folder is unmounted (deepest first) and its loop devices detached."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cai_tui.kata import rootfs_chroot as ch
from cai_tui.lab.kata.rootfs_image import lab_rootfs_answers, make_lab_rootfs

TOOLS = ("mkfs.ext4", "e2fsck", "resize2fs", "dumpe2fs", "debugfs", "qemu-img", "losetup", "fuse2fs", "chroot")


def cli() -> list[str]:
    beside = Path(sys.executable).with_name("cai-tui")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "cai_tui.cli.main"]


def mounts_below(directory: Path) -> list[str]:
    root = os.path.realpath(directory)
    out = []
    for line in Path("/proc/mounts").read_text().splitlines():
        mp = line.split()[1].replace("\\040", " ")
        if mp == root or mp.startswith(root + "/"):
            out.append(mp)
    return out


def loops_of(image: Path) -> str:
    return subprocess.run(["losetup", "-j", str(image)], capture_output=True, text=True).stdout.strip()


@dataclass
class RootfsLab:
    dir: Path
    recipe: Path
    image: Path
    mount_dir: Path
    installer: Path
    state: Path

    def run(self, step: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "CAI_TUI_STATE_DIR": str(self.state), **(env or {})}
        full_env.pop("CAI_TUI_EVENTS", None)
        return subprocess.run(
            [*cli(), "kata", "rootfs", step, "--recipe", str(self.recipe), *args],
            capture_output=True,
            text=True,
            env=full_env,
            timeout=120,
        )


def write_recipe(directory: Path, answers: dict[str, object]) -> Path:
    doc = {"schema_version": 1, "flow": "kata-virtcca", "name": "rootfs-lab", "answers": answers}
    doc["targets"] = {"host": "local"}
    path = directory / "recipe.yaml"
    path.write_text(json.dumps(doc, indent=2))  # JSON is YAML
    return path


def cleanup(directory: Path) -> None:
    for mp in reversed(mounts_below(directory)):
        subprocess.run(["umount", "-l", mp], capture_output=True)
    for image in directory.rglob("*.img"):
        for line in loops_of(image).splitlines():
            subprocess.run(["losetup", "-d", line.split(":")[0]], capture_output=True)


@pytest.fixture(name="rootfs_lab")
def rootfs_lab_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RootfsLab]:
    missing = [t for t in TOOLS if shutil.which(t) is None]
    assert not missing, f"the kata lab needs {', '.join(missing)} (e2fsprogs, fuse2fs, qemu-utils, util-linux)"
    assert os.geteuid() == 0, "the rootfs tests mount images: run them as root"
    state = tmp_path / "state"
    monkeypatch.setenv("CAI_TUI_STATE_DIR", str(state))
    answers = lab_rootfs_answers(tmp_path)
    lab = RootfsLab(
        dir=tmp_path,
        recipe=write_recipe(tmp_path, answers),
        image=tmp_path / "rootfs.img",
        mount_dir=tmp_path / "mnt",
        installer=Path(str(answers["driver"]["installer"])),  # type: ignore[index]
        state=state,
    )
    try:
        yield lab
    finally:
        cleanup(tmp_path)


def debugfs(image: Path, request: str) -> str:
    r = subprocess.run(["debugfs", "-R", request, str(image)], capture_output=True, text=True, check=True)
    return r.stdout


# --------------------------------------------------------------------------------------------- the lab image
def test_lab_image_is_a_clean_ext4_of_this_host_with_busybox_sh(tmp_path: Path) -> None:
    image = make_lab_rootfs(tmp_path / "lab.img", 32)
    assert image.stat().st_size == 32 * 1024 * 1024
    fsck = subprocess.run(["e2fsck", "-fn", str(image)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    header = subprocess.run(["dumpe2fs", "-h", str(image)], capture_output=True, text=True).stdout
    assert "Filesystem volume name:   lab-rootfs" in header
    assert ch.guest_machine(str(image))[0] == ch.host_machine()  # read through debugfs, /bin/sh -> busybox
    listing = debugfs(image, "ls -l /usr/bin")
    assert "nvidia-container-toolkit" in listing


def test_lab_installer_stand_in_runs_in_the_chroot(rootfs_lab: RootfsLab) -> None:
    r = rootfs_lab.run("install-driver")
    assert r.returncode == 0, r.stderr
    assert "kernel source path: /home/kernel/" in r.stderr  # streamed from inside the chroot
    assert "Installation of the NVIDIA Accelerated Graphics Driver 550.127.08 is complete" in r.stderr
    assert debugfs(rootfs_lab.image, "cat /usr/lib/nvidia-lab/version").strip() == "550.127.08"
    assert "NVIDIA-Linux" not in debugfs(rootfs_lab.image, "ls /home")  # the .run copy was deleted
    assert mounts_below(rootfs_lab.dir) == []
