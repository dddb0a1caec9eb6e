"""The kata lab's guest rootfs: a small ext4 image (``mkfs.ext4 -d`` from a staging tree) that a chroot runs here.

Its /bin is busybox-static of this host's architecture (/bin/sh and the usual applets as links), /bin/bash a two-line
wrapper around busybox sh (busybox has no bash applet; the hook's ``#!/bin/bash -x`` needs one), and
/usr/bin/nvidia-container-toolkit a stand-in script (the hook calls it; dnf cannot install it here). Beside it the lab
writes a stand-in NVIDIA ``.run`` installer (:func:`make_lab_installer`) that install-driver copies in and runs in the
chroot like the real one. All three stand-ins are listed in :mod:`cai_tui.lab.kata.not_real`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
APPLETS = ("sh", "ls", "cat", "echo", "mkdir", "rm", "cp", "mv", "chmod", "sleep", "uname", "env", "true", "false")
LAB_TOOLKIT = """#!/bin/sh
# cai-tui kata lab: a stand-in for nvidia-container-toolkit (the real one comes from NVIDIA's rpm repository)
echo "lab nvidia-container-toolkit $*"
"""
LAB_BASH = """#!/bin/sh
# cai-tui kata lab: busybox has no bash applet; the hook's #!/bin/bash -x runs busybox sh
exec /bin/sh "$@"
"""
LAB_INSTALLER = """#!/bin/sh
# cai-tui kata lab: a stand-in for NVIDIA-Linux-aarch64-{version}.run (the real one builds nvidia.ko against
# --kernel-source-path); it checks its arguments like the real one and writes what it would have installed.
echo "Verifying archive integrity... OK (lab stand-in)"
echo "Uncompressing NVIDIA Accelerated Graphics Driver for Linux-aarch64 {version} (lab stand-in)"
src=""
for a in "$@"; do
  case "$a" in
    --kernel-source-path=*) src="${{a#--kernel-source-path=}}" ;;
  esac
done
[ -n "$src" ] || {{ echo "ERROR: --kernel-source-path not given"; exit 1; }}
echo "kernel source path: $src"
if [ -n "$CAI_LAB_INSTALLER_SLEEP" ]; then
  echo "building the kernel module (lab: sleeping $CAI_LAB_INSTALLER_SLEEP s)"
  sleep "$CAI_LAB_INSTALLER_SLEEP"
fi
mkdir -p /var/log /usr/lib/nvidia-lab
echo "{version}" > /usr/lib/nvidia-lab/version
echo "lab installer {version}: kernel source $src" > /var/log/nvidia-installer.log
echo "Installation of the NVIDIA Accelerated Graphics Driver {version} is complete (lab stand-in)."
"""


def busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            return path
    raise RuntimeError("busybox (busybox-static) is not installed: apt-get install busybox-static")


def _stage(root: Path) -> None:
    for d in ("bin", "usr/bin", "etc", "home/kernel", "proc", "sys", "dev", "tmp", "root", "var"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    shutil.copy2(busybox(), root / "bin/busybox")
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "usr/bin/env").symlink_to("/bin/busybox")
    for rel, text in (("bin/bash", LAB_BASH), ("usr/bin/nvidia-container-toolkit", LAB_TOOLKIT)):
        (root / rel).write_text(text)
        (root / rel).chmod(0o755)
    (root / "etc/os-release").write_text('NAME="cai-tui kata lab rootfs"\nID=cai-lab\n')
    (root / "home/kernel/Makefile").write_text("# cai-tui kata lab: stand-in for the guest kernel source tree\n")


def make_lab_rootfs(path: Path, size_mib: int = 64) -> Path:
    """A small ext4 image at ``path`` (overwritten) holding the lab rootfs; returns ``path``."""
    if shutil.which("mkfs.ext4") is None:
        raise RuntimeError("mkfs.ext4 is not installed: apt-get install e2fsprogs")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cai-lab-rootfs-") as tmp:
        _stage(Path(tmp))
        path.unlink(missing_ok=True)
        subprocess.run(
            ["mkfs.ext4", "-q", "-F", "-L", "lab-rootfs", "-d", tmp, str(path), f"{size_mib}M"],
            check=True,
            capture_output=True,
        )
    return path


def make_lab_installer(directory: Path, version: str = "550.127.08") -> Path:
    """The stand-in NVIDIA-Linux-aarch64-<version>.run in ``directory`` (mode 0755); returns its path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"NVIDIA-Linux-aarch64-{version}.run"
    path.write_text(LAB_INSTALLER.format(version=version))
    path.chmod(0o755)
    return path


def lab_rootfs_answers(directory: Path, version: str = "550.127.08", size_mib: int = 64) -> dict[str, object]:
    """Make the image and the installer under ``directory`` and return the recipe's ``rootfs``/``driver`` answers
    that point at them (grow by 1 GiB: sparse, quick)."""
    directory = Path(directory)
    image = make_lab_rootfs(directory / "rootfs.img", size_mib)
    installer = make_lab_installer(directory, version)
    return {
        "rootfs": {
            "image": str(image),
            "mount_dir": str(directory / "mnt"),
            "grow_gib": 1,
            "kernel_source_dir": str(directory / "kernel"),
        },
        "driver": {"version": version, "installer": str(installer)},
    }


__all__ = ["lab_rootfs_answers", "make_lab_installer", "make_lab_rootfs"]
