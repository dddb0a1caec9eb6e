"""KATA-1.3: grow rootfs.img (``qemu-img resize``, ``e2fsck -f``, ``resize2fs``), backup first, and its undo.

Before anything: the image must not be in use (a loop device or fuse2fs mount: e2fsck and resize2fs must never run on
a mounted file system) and the file system that holds it must have room for the backup (the image's allocated
blocks, ``cp --sparse=always``) plus the growth (what the grown image may fill). The backup ``IMAGE.bak`` is made
first and recorded (``kata-rootfs-grow``: the image, the backup, sizes and sha256 before and after); ``undo`` puts
the backup back byte for byte (a rename) once the image is unmounted. A second grow with the record in place and the
image at the recorded size changes nothing.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

from .. import events as ev
from ..events import report_done
from . import state
from .rootfs_mounts import image_users
from .rootfs_run import RootfsError, run_streaming

RECORD = "kata-rootfs-grow"
GIB = 1024**3


@dataclass(frozen=True)
class Room:
    free: int  # bytes available to this user on the image's file system
    need: int  # backup (allocated bytes) + growth
    fs: str  # the directory measured

    @property
    def ok(self) -> bool:
        return self.free >= self.need


def sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def room(image: str, grow_bytes: int) -> Room:
    """Free space on the file system that holds ``image`` against what the grow needs (statvfs, as df)."""
    directory = os.path.dirname(os.path.abspath(image))
    st = os.statvfs(directory)
    allocated = os.stat(image).st_blocks * 512
    return Room(free=st.f_bavail * st.f_frsize, need=allocated + grow_bytes, fs=directory)


def human(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def grow_argvs(image: str, grow_gib: int) -> list[list[str]]:
    """The commands, in order (the stage spec's KATA-1.3)."""
    return [
        ["cp", "--sparse=always", image, f"{image}.bak"],
        ["qemu-img", "resize", "-f", "raw", image, f"+{grow_gib}G"],
        ["e2fsck", "-f", "-y", image],
        ["resize2fs", image],
    ]


def preflight(image: str, grow_gib: int) -> None:
    """Refuse (RootfsError) when the image is missing, in use, or its file system lacks room."""
    if not os.path.isfile(image):
        raise RootfsError(f"rootfs.image {image}: no such file (set answers.rootfs.image)", 2)
    users = image_users(image)
    if users:
        raise RootfsError(
            f"{image} is mounted ({', '.join(users)}): e2fsck and resize2fs must not run on a mounted file "
            "system; run `cai-tui kata rootfs unmount --recipe R` first",
            1,
        )
    r = room(image, grow_gib * GIB)
    if not r.ok:
        raise RootfsError(
            f"not enough free space in {r.fs} for the backup and +{grow_gib} GiB: {human(r.free)} free, "
            f"{human(r.need)} needed (the backup {image}.bak and the growth); free space there or lower "
            "answers.rootfs.grow_gib",
            1,
        )


def _e2fsck_ok(rc: int) -> bool:
    return rc in (0, 1)  # 0 clean, 1 errors corrected; 2 and up: reboot wanted, uncorrected errors, operational error


def grow(image: str, grow_gib: int, *, sink: ev.EventSink = ev.discard, cancel: ev.CancelToken = ev.NEVER) -> str:
    """Grow ``image`` by ``grow_gib`` GiB; returns what happened (one line). Idempotent through the record."""
    image = os.path.abspath(image)
    rec = state.read_record(RECORD)
    if rec is not None and rec.get("image") == image and os.path.isfile(image):
        if os.path.getsize(image) == rec.get("size_after"):
            return report_done(
                f"{image} was already grown to {human(rec['size_after'])} (backup {rec['backup']}); nothing to do"
            )
        raise RootfsError(
            f"{image} was grown earlier (record {state.record_path(RECORD)}) but is now {os.path.getsize(image)} "
            f"bytes, not {rec.get('size_after')}: run `cai-tui kata rootfs undo` to restore the backup, or move "
            "the record aside if the image was replaced on purpose"
        )
    preflight(image, grow_gib)
    backup = f"{image}.bak"
    if os.path.exists(backup):
        raise RootfsError(
            f"{backup} exists already: keep it somewhere else (it may be your only copy) or delete it, then retry", 1
        )
    argvs = grow_argvs(image, grow_gib)
    size_before = os.path.getsize(image)
    sha_before = sha256(image)
    try:
        run_streaming(argvs[0], sink=sink, cancel=cancel, step="rootfs.grow")
    except BaseException:
        if os.path.exists(backup):
            os.unlink(backup)  # a partial copy is no backup
        raise
    record: dict[str, Any] = {"image": image, "backup": backup, "size_before": size_before, "sha256_before": sha_before}
    state.write_record(RECORD, record)
    try:
        run_streaming(argvs[1], sink=sink, cancel=cancel, step="rootfs.grow")
        run_streaming(argvs[2], sink=sink, cancel=cancel, step="rootfs.grow", ok=_e2fsck_ok)
        run_streaming(argvs[3], sink=sink, cancel=cancel, step="rootfs.grow")
    except RootfsError as e:
        raise RootfsError(f"{e.message}; `cai-tui kata rootfs undo` puts {backup} back", e.exit_code) from None
    record["size_after"] = os.path.getsize(image)
    state.write_record(RECORD, record)
    return f"grew {image} from {human(size_before)} to {human(record['size_after'])}; backup: {backup}"


def restore(*, sink: ev.EventSink = ev.discard) -> str | None:
    """Put the backup of the recorded grow back (a rename: byte for byte); None when nothing is recorded."""
    rec = state.read_record(RECORD)
    if rec is None:
        return None
    image, backup = rec["image"], rec["backup"]
    users = image_users(image) if os.path.exists(image) else []
    if users:
        raise RootfsError(f"{image} is still mounted ({', '.join(users)}): unmount it before restoring the backup")
    if not os.path.isfile(backup):
        raise RootfsError(
            f"the backup {backup} named by {state.record_path(RECORD)} is missing: the image cannot be restored; "
            "move the record aside once you have dealt with the image"
        )
    got = sha256(backup)
    if got != rec["sha256_before"]:
        raise RootfsError(
            f"{backup} changed since the grow (sha256 {got[:12]}…, recorded {rec['sha256_before'][:12]}…)"
        )
    os.replace(backup, image)
    state.drop_record(RECORD)
    sink(ev.note(f"restored {image} from {backup} (sha256 {got[:12]}…)", step="rootfs.undo"))
    return f"restored {image} from {backup}"


__all__ = ["RECORD", "Room", "grow", "grow_argvs", "preflight", "restore", "room", "sha256"]
