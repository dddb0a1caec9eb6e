"""KATA-1.1/1.4/1.5/1.6: what runs inside (or into) the mounted rootfs: dnf --installroot, the chroot check, the NVIDIA
installer in the chroot, and the OCI prestart hook.

Whether a step can run here is known before anything starts (:func:`why_manual`): ``dnf`` must be installed with a
repository directory on the host (openEuler's repositories; on Debian there is none), and a chroot needs the image's
binaries to run on this CPU — the ELF header of the image's ``/bin/sh`` (or ``/usr/bin/env``), read straight from the
unmounted image with ``debugfs`` (or from the mount), against the host's machine and an enabled binfmt_misc entry for
that machine (qemu-user-static). A step that cannot run is reported ``manual`` with the command for a person.
"""

from __future__ import annotations

import os
import platform
import posixpath
import shlex
import shutil
import struct
import tempfile
from pathlib import Path

from .. import events as ev
from .rootfs_read import read_in_image
from .rootfs_run import RootfsError, run_streaming

EM_NAMES = {3: "i386", 40: "arm", 62: "x86_64", 183: "aarch64", 243: "riscv64", 21: "ppc64", 22: "s390x"}
HOST_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}
PROBE_PATHS = ("/bin/sh", "/usr/bin/env", "/bin/busybox")
BINFMT_DIR = "/proc/sys/fs/binfmt_misc"
ENTER_ARGV = ["/bin/sh", "-c", "echo ok"]


def host_machine() -> str:
    m = platform.machine()
    return HOST_ALIASES.get(m, m)


def elf_machine(header: bytes) -> str | None:
    """The machine an ELF header is for (x86_64, aarch64, …), None when ``header`` is not ELF."""
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return None
    endian = "<" if header[5] == 1 else ">"
    (em,) = struct.unpack(endian + "H", header[18:20])
    return EM_NAMES.get(em, f"e_machine {em}")


def guest_machine(image: str, mount_dir: str | None = None) -> tuple[str | None, str]:
    """(machine, where it was read) of the rootfs's binaries: from the mounted tree when ``mount_dir`` holds one,
    else from the image with debugfs. (None, why) when no probe path is an ELF file."""
    for path in PROBE_PATHS:
        header = None
        where = ""
        if mount_dir and os.path.isdir(os.path.join(mount_dir, "bin")):
            target = _resolve_in_tree(mount_dir, path)
            if target is not None:
                try:
                    with open(target, "rb") as f:
                        header = f.read(64)
                    where = f"{target} (mounted)"
                except OSError:
                    header = None
        elif os.path.isfile(image):
            header = read_in_image(image, path, 64)
            where = f"{path} in {image} (debugfs)"
        machine = elf_machine(header) if header else None
        if machine:
            return machine, where
    return None, f"none of {', '.join(PROBE_PATHS)} is an ELF binary in {mount_dir or image}"


def _resolve_in_tree(root: str, path: str) -> str | None:
    """``path`` inside the tree at ``root``, absolute symlinks resolved against ``root`` (never the host's /)."""
    for _ in range(8):
        full = root.rstrip("/") + path
        if os.path.islink(full):
            dest = os.readlink(full)
            path = dest if dest.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(path), dest))
            continue
        return full if os.path.isfile(full) else None
    return None


def binfmt_runs(machine: str, binfmt_dir: str = BINFMT_DIR) -> bool:
    """Whether an enabled binfmt_misc entry runs ``machine`` binaries (qemu-<machine>[-static])."""
    d = Path(binfmt_dir)
    if not (d / "status").is_file() or (d / "status").read_text().strip() != "enabled":
        return False
    for entry in d.glob(f"qemu-{machine}*"):
        try:
            if entry.read_text().splitlines()[0].strip() == "enabled":
                return True
        except (OSError, IndexError):
            continue
    return False


def chroot_problem(image: str, mount_dir: str | None = None, binfmt_dir: str = BINFMT_DIR) -> str:
    """'' when a chroot into the rootfs runs here, else why not (for the plan's ``manual``)."""
    machine, where = guest_machine(image, mount_dir)
    if machine is None:
        return f"the rootfs's architecture cannot be read ({where})"
    host = host_machine()
    if machine == host or binfmt_runs(machine, binfmt_dir):
        return ""
    return (
        f"the rootfs is {machine} ({where}) and this host is {host} without a binfmt_misc entry for {machine} "
        f"({binfmt_dir}/qemu-{machine}): run it on the {machine} host, or install qemu-user-static"
    )


def dnf_problem(repos_dir: str = "/etc/yum.repos.d") -> str:
    """'' when ``dnf --installroot`` can run here, else why not."""
    if shutil.which("dnf") is None:
        return "dnf is not installed here (this is not the openEuler host the document uses)"
    if not any(Path(repos_dir).glob("*.repo")):
        return f"{repos_dir} has no .repo file: add openEuler's and nvidia-container-toolkit's repositories"
    return ""


def dnf_argv(mount_dir: str, packages: list[str]) -> list[str]:
    """KATA-1.1 with the pitfall fixed: the host's repository directory, not the image's."""
    return ["dnf", f"--installroot={mount_dir}", "--setopt=reposdir=/etc/yum.repos.d", "install", *packages, "-y"]


def chroot_argv(mount_dir: str, argv: list[str]) -> list[str]:
    return ["chroot", mount_dir, *argv]


def install_tools(mount_dir: str, packages: list[str], *, sink: ev.EventSink, cancel: ev.CancelToken) -> str:
    run_streaming(dnf_argv(mount_dir, packages), sink=sink, cancel=cancel, step="rootfs.install_tools")
    toolkit = os.path.join(mount_dir, "usr/bin/nvidia-container-toolkit")
    if "nvidia-container-toolkit" in packages and not os.path.exists(toolkit):
        raise RootfsError(f"dnf finished but {toolkit} is missing: the KATA-1.6 hook calls it")
    return f"installed {', '.join(packages)} into {mount_dir}"


def enter(mount_dir: str, *, sink: ev.EventSink, cancel: ev.CancelToken) -> str:
    ran = run_streaming(chroot_argv(mount_dir, ENTER_ARGV), sink=sink, cancel=cancel, step="rootfs.enter")
    if "ok" not in ran.lines:
        raise RootfsError(f"the chroot ran but did not answer ok: {ran.text[-200:]!r}")
    return f"the chroot into {mount_dir} works (for a shell: chroot {mount_dir} /bin/bash)"


def installer_name(version: str) -> str:
    return f"NVIDIA-Linux-aarch64-{version}.run"


def installer_argv(name: str) -> list[str]:
    """The installer as it runs in the chroot: the document's line, unattended (``--silent``: no questions)."""
    return [f"/home/{name}", "--kernel-source-path=/home/kernel/", "--silent"]


def install_driver(
    mount_dir: str, installer: str, *, sink: ev.EventSink, cancel: ev.CancelToken, keep: bool = False
) -> str:
    """Copy ``installer`` (on the host) into <rootfs>/home, run it in the chroot, delete the copy (space)."""
    if not os.path.isfile(installer):
        raise RootfsError(f"driver.installer {installer}: no such file (download it on the host first)", 2)
    name = os.path.basename(installer)
    inside = os.path.join(mount_dir, "home", name)
    os.makedirs(os.path.dirname(inside), exist_ok=True)
    if os.path.realpath(installer) != os.path.realpath(inside):
        shutil.copyfile(installer, inside)
    os.chmod(inside, 0o755)
    try:
        run_streaming(
            chroot_argv(mount_dir, installer_argv(name)), sink=sink, cancel=cancel, step="rootfs.install_driver"
        )
    finally:
        if not keep:
            Path(inside).unlink(missing_ok=True)
    return f"ran {name} in the chroot {mount_dir}"


def write_hook(mount_dir: str, hook_path: str, text: str) -> tuple[str, bytes | None]:
    """Write the hook at <mount_dir><hook_path>, mode 0755, atomically; returns (path, the previous bytes or None)."""
    dest = mount_dir.rstrip("/") + hook_path
    previous: bytes | None = None
    if os.path.isfile(dest):
        previous = Path(dest).read_bytes()
    os.makedirs(os.path.dirname(dest), mode=0o755, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".hook.", dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest, previous


def command_line(argv: list[str]) -> str:
    return shlex.join(argv)


__all__ = [
    "ENTER_ARGV",
    "binfmt_runs",
    "chroot_argv",
    "chroot_problem",
    "dnf_argv",
    "dnf_problem",
    "elf_machine",
    "enter",
    "guest_machine",
    "host_machine",
    "install_driver",
    "install_tools",
    "installer_argv",
    "installer_name",
    "write_hook",
]
