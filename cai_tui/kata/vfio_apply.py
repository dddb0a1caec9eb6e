"""KATA-3.1 apply and undo: hand the planned functions to vfio-pci through sysfs, verify, and give them back.

Each sysfs attribute is written in place with one ``write()`` (``O_WRONLY``, no ``O_CREAT``: an attribute the kernel
lacks is an error, not a new file; ``O_NONBLOCK`` so that a pipe nobody reads — the lab's emulator stopped — fails at
once instead of hanging). The kernel acts on the write before it returns; the doer still polls for the effect (the
``driver`` link, ``/dev/vfio/<N>``) up to ``settle_s``, which costs nothing on a real host and lets the lab's emulator
(:mod:`cai_tui.lab.kata.sysfs`) catch up.

Before the first write, each function's previous driver and ``driver_override`` go into the undo record
(:data:`~cai_tui.kata.vfio.RECORD`, :mod:`cai_tui.kata.state`); a second apply keeps the first one's record. Undo,
per recorded function, last first: restore the override (``echo > driver_override`` clears it), unbind from
vfio-pci, ``drivers_probe`` (and, if that did not bring the previous driver back, ``drivers/<old>/bind``), verify.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ..events import NEVER, CancelToken, EventSink, line, note, report_done
from ..targets.sysroot import SysrootTarget
from .state import drop_record, read_record, write_record
from .vfio import (
    DRIVERS_PROBE,
    PCI_BUS,
    PCI_DEVICES,
    RECORD,
    VFIO,
    VfioError,
    VfioPlan,
    Write,
    bind_writes,
    sysroot_of,
)

SETTLE_S = 5.0
POLL_S = 0.01


@dataclass
class Outcome:
    changed: list[str] = field(default_factory=list)  # "BDF: nvidia → vfio-pci"
    nodes: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"changed": self.changed, "nodes": self.nodes, "messages": self.messages}


def driver_now(t: SysrootTarget, bdf: str) -> str | None:
    """The driver ``BDF`` is bound to (the tail of its ``driver`` link), or None."""
    host = t.host_path(f"{PCI_DEVICES}/{bdf}/driver", follow_last=False)
    return os.readlink(host).rstrip("/").rsplit("/", 1)[-1] if os.path.islink(host) else None


def sysfs_write(t: SysrootTarget, w: Write) -> None:
    """``echo DATA > PATH`` as one write; OSError → VfioError naming the file and what the kernel said."""
    host = t.host_path(w.path)
    try:
        fd = os.open(host, os.O_WRONLY | os.O_NONBLOCK | os.O_TRUNC)
        try:
            os.write(fd, (w.data + "\n").encode())
        finally:
            os.close(fd)
    except OSError as e:
        why = {
            errno.ENOENT: "absent (the kernel does not offer it: driver not loaded, or a wrong address)",
            errno.EBUSY: "device busy (still bound to a driver, or in use)",
            errno.ENODEV: "no such device, or the driver does not match it",
            errno.ENXIO: "nothing reads it (the kata lab's sysfs emulator is not running)",
            errno.EACCES: "permission denied (run as root)",
            errno.EPERM: "not permitted (run as root)",
        }.get(e.errno or 0, e.strerror or str(e))
        raise VfioError(f"`{w.shell()}` failed: {why}") from None


def _on(t: SysrootTarget, bdf: str, want: str | None) -> Callable[[], bool]:
    return lambda: driver_now(t, bdf) == want


def _wait(pred: Callable[[], bool], settle_s: float, token: CancelToken) -> bool:
    deadline = time.monotonic() + settle_s
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        if token.wait(POLL_S):
            token.check()  # raises Cancelled


def _do(t: SysrootTarget, w: Write, sink: EventSink) -> None:
    sink(line(w.shell(), source="sysfs"))
    sysfs_write(t, w)


def apply(plan: VfioPlan, *, sink: EventSink, token: CancelToken = NEVER, settle_s: float = SETTLE_S) -> Outcome:
    """Bind every planned function to vfio-pci and verify ``/dev/vfio/<N>``; VfioError (exit 1) when it fails."""
    if not plan.viable:
        raise VfioError("binding cannot work: " + "; ".join(b.what for b in plan.all_blockers))
    t = sysroot_of(plan.sysroot)
    out = Outcome()
    todo = plan.to_bind
    if todo:
        record = read_record(RECORD) or {"sysroot": plan.sysroot, "devices": []}
        if record.get("sysroot") != plan.sysroot:
            raise VfioError(
                f"an undo record for another sysroot ({record.get('sysroot')}) exists: run `cai-tui kata vfio undo` "
                "first, or move the record aside"
            )
        known = {d["bdf"] for d in record["devices"]}
        for m in todo:
            if m.bdf not in known:
                group = next(g.group for g in plan.groups if m in g.members)
                record["devices"].append(
                    {"bdf": m.bdf, "group": group, "previous_driver": m.driver, "previous_override": m.override}
                )
        path = write_record(RECORD, record)
        sink(note(f"recorded the previous drivers in {path} (undo: cai-tui kata vfio undo)"))
    for g in plan.groups:
        for m in g.to_bind:
            token.check()
            for w in bind_writes(m):
                _do(t, w, sink)
                if w.path.endswith("/unbind") and not _wait(_on(t, m.bdf, None), settle_s, token):
                    raise VfioError(
                        f"{m.bdf} is still bound to {driver_now(t, m.bdf)} after the unbind: a process holds it "
                        f"(`fuser -v /dev/nvidia*`, `dmesg | tail`); undo with `cai-tui kata vfio undo`"
                    )
            if not _wait(_on(t, m.bdf, VFIO), settle_s, token):
                raise VfioError(
                    f"vfio-pci did not take {m.bdf} (driver now: {driver_now(t, m.bdf) or 'none'}): see `dmesg | "
                    "grep vfio` ('probe with driver vfio-pci failed with error -22': no IOMMU group); "
                    "undo with `cai-tui kata vfio undo`"
                )
            out.changed.append(f"{m.bdf}: {m.driver or 'no driver'} → {VFIO}")
            sink(note(f"{m.bdf} is bound to vfio-pci (was {m.driver or 'no driver'})"))
        if g.node is not None:
            node = g.node
            if not _wait(partial(t._exists, node), settle_s, token):
                raise VfioError(f"{node} did not appear after binding group {g.group}: check `ls -l /dev/vfio`, dmesg")
            out.nodes.append(node)
            sink(note(f"{node} exists: export VFIO={node}"))
    if not todo:
        out.messages.append(report_done("nothing to do: every member is on vfio-pci already"))
    return out


def undo(sysroot: str | None, *, sink: EventSink, token: CancelToken = NEVER, settle_s: float = SETTLE_S) -> Outcome:
    """Give every recorded function back to its previous driver; 'nothing to undo' without a record."""
    out = Outcome()
    record = read_record(RECORD)
    if not record or not record.get("devices"):
        out.messages.append("nothing to undo: no vfio binding recorded")
        drop_record(RECORD)
        return out
    root = record.get("sysroot") or "/"
    if sysroot is not None and sysroot_of(sysroot).root != root:
        raise VfioError(f"the recorded binding is under {root}, not {sysroot}: run undo with --sysroot {root}", 2)
    t = sysroot_of(root)
    failed: list[dict[str, Any]] = []
    for d in reversed(record["devices"]):
        token.check()
        bdf, prev, prev_override = d["bdf"], d.get("previous_driver"), d.get("previous_override")
        if not t._exists(f"{PCI_DEVICES}/{bdf}"):
            out.messages.append(f"{bdf} is gone from {PCI_DEVICES}: nothing to give back")
            continue
        try:
            _do(t, Write(f"{PCI_DEVICES}/{bdf}/driver_override", prev_override or ""), sink)
            now = driver_now(t, bdf)
            if now == VFIO:
                _do(t, Write(f"{PCI_BUS}/drivers/{VFIO}/unbind", bdf), sink)
                if not _wait(_on(t, bdf, None), settle_s, token):
                    raise VfioError(f"{bdf} is still on vfio-pci after the unbind: a VM (QEMU) holds the group")
            elif now is not None and now != prev:  # unbound (an apply cut short) goes back below
                out.messages.append(f"{bdf} is on {now}, neither vfio-pci nor {prev or 'unbound'}: left as it is")
                continue
            if prev is not None and driver_now(t, bdf) != prev:
                _do(t, Write(DRIVERS_PROBE, bdf), sink)
                if not _wait(_on(t, bdf, prev), settle_s, token):
                    bind = Write(f"{PCI_BUS}/drivers/{prev}/bind", bdf)
                    if t._exists(os.path.dirname(bind.path)) and driver_now(t, bdf) is None:
                        _do(t, bind, sink)
                    if not _wait(_on(t, bdf, prev), settle_s, token):
                        raise VfioError(
                            f"{bdf} did not go back to {prev} (driver now: {driver_now(t, bdf) or 'none'}): "
                            f"`modprobe {prev}`, then `echo {bdf} > {DRIVERS_PROBE}`"
                        )
            out.changed.append(f"{bdf}: {VFIO} → {prev or 'no driver'}")
            sink(note(f"{bdf} is back on {prev or 'no driver'}"))
        except VfioError as e:
            failed.append(d)
            out.messages.append(e.message)
            sink(note(e.message, level="error"))
    if failed:
        record["devices"] = [x for x in record["devices"] if x in failed]
        write_record(RECORD, record)
        raise VfioError(
            f"{len(failed)} function(s) not given back ({', '.join(d['bdf'] for d in failed)}): the record keeps them; "
            "fix the cause above and run `cai-tui kata vfio undo` again"
        )
    drop_record(RECORD)
    return out
