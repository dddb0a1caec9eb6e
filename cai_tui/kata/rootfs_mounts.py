"""KATA-1.1/1.4/1.7: rootfs.img mounted on ROOTFS_DIR (a loop device, or fuse2fs where loop mounts are not allowed),
the pseudo-filesystems the chroot needs bound under it, and everything unmounted in reverse order.

How mounts persist across the separate action processes: every mount is appended to the record ``kata-rootfs-mounts``
(:mod:`cai_tui.kata.state`) the moment it exists, so the record always says what is mounted, even after a crash.
``rootfs.mount`` leaves its mounts (``temporary: false``); ``rootfs.unmount`` and ``undo`` unmount what the record
says, last first, then drop it. A step that finds no record (install-tools, enter, install-driver, add-hook run on
their own) mounts what it needs itself (``temporary: true``) and unmounts it in its ``finally`` — on success, error,
Ctrl-C and SIGTERM (the CLI turns both into a cancellation). A record left by a killed process (SIGKILL) is what
``cai-tui kata rootfs unmount`` cleans up, as does the next step that needs the rootfs (a ``temporary`` record
is never mistaken for the mounts of ``rootfs.mount``). A SIGKILLed run can leave its chroot child running (it has its
own session): then the unmount names it as the holder.

The pseudo-filesystems are the document's (KATA-1.4): sysfs ro on sys, proc ro on proc, a tmpfs on tmp, /dev bound
read-only on dev (made a slave mount, so that the devpts mounted on dev/pts does not propagate back onto the host's
/dev/pts where / is a shared mount, as under systemd), devpts on dev/pts.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import events as ev
from . import state
from .rootfs_run import RootfsError, run_quiet, run_streaming

RECORD = "kata-rootfs-mounts"
METHODS = ("auto", "loop", "fuse2fs")
# (path under ROOTFS_DIR, mount arguments before the target): KATA-1.4 in the document's order
PSEUDO: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sys", ("-t", "sysfs", "-o", "ro", "none")),
    ("proc", ("-t", "proc", "-o", "ro", "none")),
    ("tmp", ("-t", "tmpfs", "none")),
    ("dev", ("-o", "bind,ro", "/dev")),
    ("dev/pts", ("-t", "devpts", "none")),
)
BUSY_WAIT_S = 5.0


def _unescape(field_: str) -> str:
    out, i = [], 0
    while i < len(field_):
        if field_[i] == "\\" and field_[i + 1 : i + 4].isdigit():
            out.append(chr(int(field_[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field_[i])
            i += 1
    return "".join(out)


def mount_table(path: str = "/proc/self/mounts") -> list[tuple[str, str, str]]:
    """(source, mount point, fs type) of every mount, in mount order."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 3:
            rows.append((_unescape(parts[0]), _unescape(parts[1]), parts[2]))
    return rows


def mounts_under(directory: str) -> list[str]:
    """Mount points at or below ``directory``, in mount order."""
    root = os.path.realpath(directory).rstrip("/") or "/"
    return [mp for _s, mp, _t in mount_table() if mp == root or mp.startswith(root + "/")]


def is_mountpoint(path: str) -> bool:
    return os.path.realpath(path) in {mp for _s, mp, _t in mount_table()}


def image_users(image: str) -> list[str]:
    """What holds ``image`` open as a file system: loop devices backed by it and fuse2fs mounts of it."""
    real = os.path.realpath(image)
    users = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        with contextlib.suppress(OSError):
            if os.path.realpath(backing.read_text().strip().removesuffix(" (deleted)")) == real:
                users.append(f"/dev/{backing.parent.parent.name}")
    for source, mp, fstype in mount_table():
        if fstype.startswith("fuse") and os.path.realpath(source) == real:
            users.append(f"fuse2fs on {mp}")
    return users


# --------------------------------------------------------------------------------------------- the record
@dataclass
class MountRecord:
    image: str
    mount_dir: str
    method: str = ""
    mounts: list[str] = field(default_factory=list)
    temporary: bool = False

    def save(self) -> None:
        state.write_record(RECORD, self.__dict__)

    @classmethod
    def load(cls) -> MountRecord | None:
        data: Any = state.read_record(RECORD)
        if data is None:
            return None
        try:
            return cls(**data)
        except TypeError:
            raise state.StateError(
                f"{state.record_path(RECORD)}: not a mount record; unmount by hand (umount -R) and delete it"
            ) from None


# --------------------------------------------------------------------------------------------- mounting
def loop_problem() -> str:
    """'' when loop mounts can work here, else why not (no /dev/loop-control, no free loop device)."""
    if not os.path.exists("/dev/loop-control"):
        return "/dev/loop-control is missing (a container without loop devices)"
    try:
        r = run_quiet(["losetup", "-f"])
    except RootfsError as e:
        return str(e)
    return "" if r.returncode == 0 else f"losetup -f: {(r.stderr or r.stdout).strip() or 'no free loop device'}"


def fuse_problem() -> str:
    from shutil import which

    if which("fuse2fs") is None:
        return "fuse2fs is not installed (package fuse2fs / e2fsprogs)"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing"
    return ""


def image_mount_argv(image: str, mount_dir: str, method: str) -> list[str]:
    if method == "fuse2fs":
        return ["fuse2fs", "-o", "rw", os.path.abspath(image), mount_dir]
    return ["mount", "-o", "loop", os.path.abspath(image), mount_dir]


def pseudo_argvs(mount_dir: str) -> list[list[str]]:
    return [["mount", *args, os.path.join(mount_dir, sub)] for sub, args in PSEUDO]


def mount_all(
    image: str,
    mount_dir: str,
    *,
    method: str = "auto",
    pseudo: bool = True,
    temporary: bool = False,
    sink: ev.EventSink = ev.discard,
    cancel: ev.CancelToken = ev.NEVER,
    step: str = "",
) -> MountRecord:
    """Mount ``image`` on ``mount_dir`` (and the pseudo-filesystems), recording each mount as it is made. On any
    failure or cancellation what was mounted is unmounted again before the exception leaves."""
    if method not in METHODS:
        raise RootfsError(f"--method {method!r}: use one of {', '.join(METHODS)}", 2)
    if not os.path.isfile(image):
        raise RootfsError(f"rootfs.image {image}: no such file (set answers.rootfs.image)", 2)
    users = image_users(image)
    if users:
        raise RootfsError(f"{image} is already in use ({', '.join(users)}): unmount it first", 1)
    mount_dir = os.path.realpath(mount_dir)
    if mounts_under(mount_dir):
        raise RootfsError(
            f"{mount_dir} already has mounts ({', '.join(mounts_under(mount_dir))}), not made by cai-tui: "
            f"unmount them (umount -R {mount_dir}) or choose another rootfs.mount_dir",
            1,
        )
    os.makedirs(mount_dir, exist_ok=True)
    chosen = method
    if method == "auto":
        why_not = loop_problem()
        if not why_not:
            chosen = "loop"
        else:
            fuse_why = fuse_problem()
            if fuse_why:
                raise RootfsError(f"cannot mount {image}: no loop device ({why_not}) and no fuse2fs ({fuse_why})")
            chosen = "fuse2fs"
            sink(ev.note(f"loop mounts are not allowed here ({why_not}): mounting with fuse2fs", step=step))
    rec = MountRecord(image=os.path.abspath(image), mount_dir=mount_dir, method=chosen, temporary=temporary)
    try:
        run_streaming(image_mount_argv(image, mount_dir, chosen), sink=sink, cancel=cancel, step=step)
        rec.mounts.append(mount_dir)
        rec.save()
        how = "fuse2fs (a FUSE mount)" if chosen == "fuse2fs" else "a loop device"
        source = next((s for s, mp, _t in mount_table() if mp == mount_dir), "?")
        sink(ev.note(f"mounted {image} on {mount_dir} with {how}: {source}", step=step))
        if pseudo:
            for sub, argv in zip((s for s, _a in PSEUDO), pseudo_argvs(mount_dir), strict=True):
                target = os.path.join(mount_dir, sub)
                os.makedirs(target, exist_ok=True)
                run_streaming(argv, sink=sink, cancel=cancel, step=step)
                rec.mounts.append(target)
                rec.save()
                if sub == "dev":  # no propagation back to the host's /dev (devpts on dev/pts next)
                    run_streaming(["mount", "--make-slave", target], sink=sink, cancel=cancel, step=step)
    except BaseException:
        with contextlib.suppress(RootfsError):
            unmount_all(rec, sink=sink, step=step)
        raise
    return rec


def _holders(directory: str) -> list[str]:
    """Processes whose root, cwd or an open file lies under ``directory`` (what `fuser -vm` would name)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for link in ("root", "cwd"):
                if os.readlink(proc / link).startswith(directory):
                    comm = (proc / "comm").read_text().strip()
                    found.append(f"{comm} (pid {proc.name})")
                    break
    return found


def unmount_all(rec: MountRecord, *, sink: ev.EventSink = ev.discard, step: str = "") -> list[str]:
    """Unmount what ``rec`` lists, last first (and anything mounted below them since); drop the record when all are
    gone. Returns what was unmounted. A busy mount point is retried for a few seconds (a cancelled chroot command
    may still be exiting), then reported with the processes that hold it."""
    done: list[str] = []
    wanted = list(rec.mounts)
    for mp in reversed(wanted):
        for extra in reversed(mounts_under(mp)):  # mounted below ours by someone else: they go first
            if extra != mp and extra not in wanted:
                _umount(extra, sink, step)
                done.append(extra)
        if is_mountpoint(mp):
            _umount(mp, sink, step)
            done.append(mp)
        rec.mounts.remove(mp)
        if rec.mounts:
            rec.save()
    for dev in image_users(rec.image):  # a loop device that outlived its mount (mount -o loop clears its own)
        if dev.startswith("/dev/loop"):
            run_quiet(["losetup", "-d", dev])
    state.drop_record(RECORD)
    return done


def _umount(mp: str, sink: ev.EventSink, step: str) -> None:
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        r = run_quiet(["umount", mp])
        if r.returncode == 0 or not is_mountpoint(mp):
            sink(ev.note(f"unmounted {mp}", step=step))
            return
        if time.monotonic() >= deadline:
            holders = _holders(mp)
            raise RootfsError(
                f"umount {mp}: {(r.stderr or r.stdout).strip()}"
                + (f"; held by {', '.join(holders)}" if holders else "")
                + " — leave the chroot shells (exit) or stop them, then run `cai-tui kata rootfs unmount` again"
            )
        time.sleep(0.2)


@contextlib.contextmanager
def mounted(
    image: str,
    mount_dir: str,
    *,
    method: str = "auto",
    sink: ev.EventSink = ev.discard,
    cancel: ev.CancelToken = ev.NEVER,
    step: str = "",
) -> Iterator[MountRecord]:
    """The rootfs mounted with its pseudo-filesystems for the duration: the record's mounts when ``rootfs.mount``
    made them (left mounted), else mounted now and unmounted on every way out."""
    rec = MountRecord.load()
    if rec is not None and rec.temporary:  # left by a run that was killed (SIGKILL) before its finally
        sink(ev.note(f"unmounting what a killed run left mounted under {rec.mount_dir}", level="warn", step=step))
        unmount_all(rec, sink=sink, step=step)
        rec = None
    if rec is not None and rec.mounts:
        if os.path.realpath(rec.mount_dir) != os.path.realpath(mount_dir) or rec.image != os.path.abspath(image):
            raise RootfsError(
                f"the mount record says {rec.image} is mounted on {rec.mount_dir}, not {image} on {mount_dir}: "
                "run `cai-tui kata rootfs unmount` with the recipe that mounted it first"
            )
        missing = [mp for mp in rec.mounts if not is_mountpoint(mp)]
        if missing:
            raise RootfsError(
                f"the mount record lists {', '.join(missing)}, which is no longer mounted: "
                "run `cai-tui kata rootfs unmount`, then mount again"
            )
        sink(ev.note(f"using the mounts of rootfs.mount ({rec.method}) on {rec.mount_dir}", step=step))
        yield rec
        return
    rec = mount_all(image, mount_dir, method=method, temporary=True, sink=sink, cancel=cancel, step=step)
    try:
        yield rec
    finally:
        unmount_all(rec, sink=sink, step=step)


__all__ = [
    "METHODS",
    "PSEUDO",
    "RECORD",
    "MountRecord",
    "fuse_problem",
    "image_mount_argv",
    "image_users",
    "is_mountpoint",
    "loop_problem",
    "mount_all",
    "mount_table",
    "mounted",
    "mounts_under",
    "pseudo_argvs",
    "unmount_all",
]
