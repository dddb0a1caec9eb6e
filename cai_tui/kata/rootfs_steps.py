"""The guest rootfs steps as plans (the exact commands each runs, and whether it must be done by a person here) and
as work (what ``cai-tui kata rootfs <step>`` does). The CLI and the action plans both read :func:`plan`.

Steps: ``grow`` (KATA-1.3), ``mount`` (KATA-1.1: the image, and KATA-1.4: the pseudo-filesystems, left mounted and
recorded), ``install-tools`` (KATA-1.1 dnf --installroot), ``enter`` (KATA-1.4: not interactive here — it checks that
the chroot runs ``/bin/sh -c 'echo ok'``; a person opens a shell with ``chroot DIR /bin/bash``), ``install-driver``
(KATA-1.5), ``add-hook`` (KATA-1.6), ``unmount`` (KATA-1.7), ``undo``. The steps that need the rootfs mounted use
the mounts of ``mount`` when recorded, else mount for their own run and unmount on every way out.

Undo records: ``kata-rootfs-grow`` (the backup: restoring it takes back everything later steps wrote into the image),
``kata-rootfs-mounts`` (see :mod:`.rootfs_mounts`) and ``kata-rootfs-hook`` (the file add-hook replaced, or none, for
an undo without a grow backup). What install-tools and install-driver write is taken back only by the grow backup.
"""

from __future__ import annotations

import base64
import os
import shlex
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import events as ev
from ..events import report_done
from . import rootfs_chroot as ch
from . import rootfs_grow as gr
from . import rootfs_mounts as mo
from . import state
from .rootfs_run import RootfsError, run_streaming

STEPS = ("grow", "mount", "install-tools", "enter", "install-driver", "add-hook", "unmount", "undo")
HOOK_RECORD = "kata-rootfs-hook"
NEEDS_MOUNT = frozenset({"install-tools", "enter", "install-driver", "add-hook"})


@dataclass
class StepPlan:
    step: str
    commands: list[list[str]] = field(default_factory=list)  # what runs, in order (as a person would type it)
    manual: str = ""  # why it cannot run here ('' : it can)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        return [shlex.join(c) for c in self.commands]


def mount_method(method: str) -> tuple[str, str]:
    """(the method a mount will use, why) — ``auto`` is decided here: a loop device where loop mounts work."""
    if method != "auto":
        return method, f"--method {method}"
    why_not = mo.loop_problem()
    if not why_not:
        return "loop", "loop mounts work here"
    return "fuse2fs", f"loop mounts are not allowed here ({why_not})"


def _mount_commands(a: Any, mounted: bool, method: str, notes: list[str]) -> list[list[str]]:
    if mounted:
        return []
    chosen, why = mount_method(method)
    notes.append(f"mounts with {'a loop device' if chosen == 'loop' else 'fuse2fs'}: {why}")
    out = [mo.image_mount_argv(a.rootfs.image, a.rootfs.mount_dir, chosen)]
    for argv in mo.pseudo_argvs(a.rootfs.mount_dir):
        out.append(argv)
        if argv[-1] == os.path.join(a.rootfs.mount_dir, "dev"):  # as mount_all: no propagation back onto /dev
            out.append(["mount", "--make-slave", argv[-1]])
    return out


def _umount_commands(a: Any, rec: mo.MountRecord | None = None) -> list[list[str]]:
    """What the record says is mounted, last first; without a record, what ``mount`` would have mounted."""
    if rec is not None:
        return [["umount", mp] for mp in reversed(rec.mounts)]
    d = a.rootfs.mount_dir
    return [["umount", os.path.join(d, sub)] for sub, _x in reversed(mo.PSEUDO)] + [["umount", d]]


def plan(step: str, a: Any, *, method: str = "auto", binfmt_dir: str = ch.BINFMT_DIR) -> StepPlan:
    """The commands of ``step`` for the answers ``a`` and, known before anything starts, whether it is manual."""
    r = a.rootfs
    p = StepPlan(step)
    try:
        rec = mo.MountRecord.load()
    except Exception:  # an unreadable record: the step itself reports it
        rec = None
    mounted = rec is not None and bool(rec.mounts)
    if step == "grow":
        p.commands = gr.grow_argvs(r.image, r.grow_gib)
        p.notes.append(
            f"refused while {r.image} is mounted or when its file system lacks room for the backup and "
            f"+{r.grow_gib} GiB; e2fsck exit 1 (errors corrected) counts as success"
        )
    elif step == "mount":
        p.commands = _mount_commands(a, False, method, p.notes)
        p.notes.append("each mount is recorded as it is made, for unmount and undo")
    elif step == "unmount":
        p.commands = _umount_commands(a, rec) if rec is not None else []
        p.notes.append("unmounts what `mount` recorded, last first; nothing recorded: nothing to do")
    elif step == "undo":
        p.commands = _umount_commands(a, rec) if rec is not None else []
        grown = gr.state.read_record(gr.RECORD)
        if grown is not None:
            p.commands.append(["mv", grown["backup"], grown["image"]])
        if state.read_record(HOOK_RECORD) is not None and grown is None:
            p.notes.append(f"puts back what add-hook replaced or removed at {a.driver.hook_path} (recorded)")
        elif not p.commands:
            p.notes.append("nothing is recorded: nothing to undo")
        p.notes.append("unmounts what is recorded; restores the image from the grow's backup when grow recorded one")
    elif step in NEEDS_MOUNT:
        pre = _mount_commands(a, mounted, method, p.notes)
        post = _umount_commands(a) if pre else []
        if step == "install-tools":
            core = [ch.dnf_argv(r.mount_dir, list(r.packages))]
            p.manual = ch.dnf_problem()
        elif step == "add-hook":
            dest = r.mount_dir.rstrip("/") + a.driver.hook_path
            core = [["install", "-D", "-m", "0755", "/dev/stdin", dest]]
            p.notes.append(f"the kata-hook file (cai-tui render kata-hook) is written to {dest}, mode 0755")
        else:
            if step == "enter":
                core = [ch.chroot_argv(r.mount_dir, ch.ENTER_ARGV)]
                p.notes.append(f"not interactive: for a shell in the rootfs run `chroot {r.mount_dir} /bin/bash`")
            else:
                given = a.driver.installer
                name = os.path.basename(given) if given else ch.installer_name(a.driver.version)
                inside = os.path.join(r.mount_dir, "home", name)
                core = []
                if a.driver.installer:
                    core.append(["cp", a.driver.installer, inside])
                else:
                    url = f"https://cn.download.nvidia.com/tesla/{a.driver.version}/{name}"
                    core.append(["wget", "-P", os.path.join(r.mount_dir, "home"), url])
                core += [["chmod", "+x", inside], ch.chroot_argv(r.mount_dir, ch.installer_argv(name)), ["rm", inside]]
            p.manual = ch.chroot_problem(r.image, r.mount_dir if mounted else None, binfmt_dir)
            if not p.manual and ch.guest_machine(r.image, r.mount_dir if mounted else None)[0] is None:
                p.notes.append(f"the rootfs's architecture could not be read from {r.image}: not checked")
        p.commands = [*pre, *core, *post]
        if pre:
            p.notes.append("the rootfs is not mounted by `mount`: this step mounts it and unmounts it when it ends")
    else:
        raise RootfsError(f"unknown rootfs step {step!r}: one of {', '.join(STEPS)}", 2)
    return p


# --------------------------------------------------------------------------------------------- the work
def run(step: str, a: Any, render_hook: Any, *, method: str, sink: ev.EventSink, cancel: ev.CancelToken) -> str:
    """Do ``step``; returns the one line that says what happened. ``render_hook()`` gives the hook's text."""
    r = a.rootfs
    if step == "grow":
        return gr.grow(r.image, r.grow_gib, sink=sink, cancel=cancel)
    if step == "mount":
        rec = mo.MountRecord.load()
        if rec is not None and rec.mounts and all(mo.is_mountpoint(m) for m in rec.mounts):
            if os.path.realpath(rec.mount_dir) == os.path.realpath(r.mount_dir):
                return report_done(f"{rec.image} is already mounted on {rec.mount_dir} ({rec.method}); nothing to do")
            raise RootfsError(f"{rec.image} is mounted on {rec.mount_dir}: run `cai-tui kata rootfs unmount` first")
        if rec is not None:
            mo.unmount_all(rec, sink=sink, step="rootfs.mount")  # what a killed run left
        rec = mo.mount_all(r.image, r.mount_dir, method=method, sink=sink, cancel=cancel, step="rootfs.mount")
        return f"mounted {r.image} on {rec.mount_dir} with {rec.method} and {len(rec.mounts) - 1} pseudo-filesystems"
    if step == "unmount":
        rec = mo.MountRecord.load()
        if rec is None:
            left = mo.mounts_under(r.mount_dir)
            if left:
                raise RootfsError(
                    f"nothing recorded, but {', '.join(left)} are mounted (not by cai-tui): `umount -R {r.mount_dir}`"
                )
            return "nothing mounted by cai-tui; nothing to do"
        done = mo.unmount_all(rec, sink=sink, step="rootfs.unmount")
        return f"unmounted {len(done)} mounts under {rec.mount_dir}, last first"
    if step == "undo":
        said = []
        rec = mo.MountRecord.load()
        if rec is not None:
            done = mo.unmount_all(rec, sink=sink, step="rootfs.undo")
            said.append(f"unmounted {len(done)} mounts under {rec.mount_dir}")
        restored = gr.restore(sink=sink)
        if restored:
            said.append(restored)
        hook = _undo_hook(a, bool(restored), method=method, sink=sink, cancel=cancel)
        if hook:
            said.append(hook)
        return "; ".join(said) if said else "nothing to undo"
    if step not in NEEDS_MOUNT:
        raise RootfsError(f"unknown rootfs step {step!r}: one of {', '.join(STEPS)}", 2)
    with mo.mounted(r.image, r.mount_dir, method=method, sink=sink, cancel=cancel, step=f"rootfs.{step}") as rec:
        d = rec.mount_dir
        if step == "install-tools":
            return ch.install_tools(d, list(r.packages), sink=sink, cancel=cancel)
        if step == "enter":
            return ch.enter(d, sink=sink, cancel=cancel)
        if step == "install-driver":
            installer = a.driver.installer
            if not installer:  # the document's wget, on the host (the chroot often has no DNS)
                name = ch.installer_name(a.driver.version)
                url = f"https://cn.download.nvidia.com/tesla/{a.driver.version}/{name}"
                run_streaming(["wget", "-nv", "-P", os.path.join(d, "home"), url], sink=sink, cancel=cancel)
                installer = os.path.join(d, "home", name)
            return ch.install_driver(d, installer, sink=sink, cancel=cancel)
        return _add_hook(a, d, render_hook(), sink)


def _add_hook(a: Any, mount_dir: str, text: str, sink: ev.EventSink) -> str:
    """Write the hook; the first change is recorded (the previous file, or none) so that undo can take it back even
    when no grow backup exists."""
    dest = mount_dir.rstrip("/") + a.driver.hook_path
    old = Path(dest).read_bytes() if os.path.isfile(dest) else None
    old_mode = stat.S_IMODE(os.stat(dest).st_mode) if old is not None else None
    if old == text.encode("utf-8") and old_mode == 0o755:
        return f"the prestart hook {a.driver.hook_path} is in place (mode 0755); nothing changed"
    if state.read_record(HOOK_RECORD) is None:
        state.write_record(
            HOOK_RECORD,
            {
                "image": os.path.abspath(a.rootfs.image),
                "hook_path": a.driver.hook_path,
                "previous_b64": base64.b64encode(old).decode() if old is not None else None,
                "previous_mode": old_mode,
            },
        )
    ch.write_hook(mount_dir, a.driver.hook_path, text)
    sink(ev.note(f"wrote {dest} (mode 0755)", step="rootfs.add_hook"))
    if old is not None:
        sink(ev.note(f"{dest} existed; replaced ({len(old)} bytes before, kept for undo)", step="rootfs.add_hook"))
    return f"wrote the prestart hook {a.driver.hook_path} in {a.rootfs.image} (mode 0755)"


def _undo_hook(a: Any, restored: bool, *, method: str, sink: ev.EventSink, cancel: ev.CancelToken) -> str:
    rec = state.read_record(HOOK_RECORD)
    if rec is None:
        return ""
    if restored:  # the image is back as it was before the grow, hook included
        state.drop_record(HOOK_RECORD)
        return ""
    with mo.mounted(rec["image"], a.rootfs.mount_dir, method=method, sink=sink, cancel=cancel, step="rootfs.undo") as m:
        dest = m.mount_dir.rstrip("/") + rec["hook_path"]
        if rec["previous_b64"] is None:
            Path(dest).unlink(missing_ok=True)
            said = f"removed the hook {rec['hook_path']} from {rec['image']}"
        else:
            ch.write_hook(m.mount_dir, rec["hook_path"], base64.b64decode(rec["previous_b64"]).decode("utf-8"))
            os.chmod(dest, rec["previous_mode"] or 0o644)
            said = f"put the previous {rec['hook_path']} back in {rec['image']}"
    state.drop_record(HOOK_RECORD)
    return said


__all__ = ["NEEDS_MOUNT", "STEPS", "StepPlan", "plan", "run"]
