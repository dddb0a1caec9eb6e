"""KATA-2.4: hand the saved vLLM image to containerd (``ctr image import``), and undo it.

The seed: ``docker save vllm-cvm -o vllm.tar.gz; ctr image import vllm.tar.gz``. ``docker save`` writes a plain tar
whatever the name says; an archive that really is gzip (its first bytes say so) is streamed through ``gunzip -c``
into ``ctr image import -``. Before anything runs the free space where containerd keeps its content is checked
(the blobs and the unpacked snapshot: about twice the uncompressed image). The record ``kata-image-import`` says
whether the import created the ref, so the undo removes only what this doer added.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import events
from ..events import EventSink, report_done
from . import state
from .container_ctr import Ctr, KataRunError, stream

RECORD = "kata-image-import"
GZIP_MAGIC = b"\x1f\x8b"
SYSTEM_ROOT = "/var/lib/containerd"
SPACE_FACTOR = 2  # content blobs + the unpacked snapshot


@dataclass(frozen=True)
class ImportPlan:
    ctr: Ctr
    archive: str
    ref: str
    gzipped: bool
    argv: list[str]  # the ctr line (reads ``-`` from gunzip when gzipped)

    @property
    def shown(self) -> str:
        line = " ".join(self.argv)
        return f"gunzip -c {self.archive} | {line}" if self.gzipped else line


def _ctr(answers: Any) -> Ctr:
    return Ctr(str(answers.container.address), str(answers.container.namespace))


def is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == GZIP_MAGIC


def plan_import(answers: Any) -> ImportPlan:
    archive = os.path.expanduser(str(answers.image.archive))
    ref = str(answers.image.containerd_ref)
    c = _ctr(answers)
    gz = os.path.isfile(archive) and is_gzip(archive)
    return ImportPlan(c, archive, ref, gz, c.argv("images", "import", "-" if gz else archive))


def unpacked_size(path: str) -> int:
    """The archive's size once unpacked: its size for a tar; gzip's ISIZE (mod 4 GiB: never below 4× the file)."""
    size = os.path.getsize(path)
    if not is_gzip(path):
        return size
    with open(path, "rb") as f:
        f.seek(-4, os.SEEK_END)
        (isize,) = struct.unpack("<I", f.read(4))
    return max(isize, 4 * size)


def content_root(address: str) -> str:
    """Where containerd keeps its content: the lab's private root beside its socket, else /var/lib/containerd."""
    beside = Path(address).parent / "root"
    if beside.is_dir():
        return str(beside)
    return SYSTEM_ROOT if os.path.isdir(SYSTEM_ROOT) else str(Path(address).parent)


def check_space(archive: str, address: str) -> tuple[int, int, str]:
    """(needed, free, where); KataRunError when the free space is short."""
    need = SPACE_FACTOR * unpacked_size(archive)
    where = content_root(address)
    free = shutil.disk_usage(where).free
    if free < need:
        raise KataRunError(
            f"not enough space for the import: {where} has {free / 2**30:.1f} GiB free, the image needs about "
            f"{need / 2**30:.1f} GiB (its blobs and the unpacked snapshot); free some space (ctr images rm of old "
            "images, docker image prune) and run it again"
        )
    return need, free, where


def run_import(answers: Any, sink: EventSink, *, step: str = "image.import") -> str:
    """Import the archive; returns the summary line. KataRunError (rc 2: input, rc 1: failure)."""
    p = plan_import(answers)
    if not os.path.isfile(p.archive):
        raise KataRunError(
            f"answers.image.archive: {p.archive} does not exist; build and save the image first "
            "(cai-tui kata image build, KATA-2.3)",
            rc=2,
        )
    p.ctr.need()
    before = p.ctr.images()
    need, free, where = check_space(p.archive, p.ctr.address)
    sink(events.note(f"free space in {where}: {free / 2**30:.1f} GiB (about {need / 2**30:.2f} GiB needed)", step=step))
    if p.gzipped:
        sink(events.note(f"{p.archive} is gzip-compressed: streamed through gunzip -c into ctr", step=step))
        gunzip = subprocess.Popen(["gunzip", "-c", p.archive], stdout=subprocess.PIPE)
        try:
            rc, _lines = stream(p.argv, sink, step=step, stdin=gunzip.stdout)
        finally:
            if gunzip.stdout is not None:
                gunzip.stdout.close()
            if gunzip.wait() != 0 and rc == 0:
                rc = 1
    else:
        rc, _lines = stream(p.argv, sink, step=step)
    after = p.ctr.images()
    added = sorted(after - before)
    rec = state.read_record(RECORD)
    if added or rec is None:  # what this import added; a re-import adds nothing and keeps the first record
        kept = [r for r in (rec or {}).get("refs", []) if r in after]
        state.write_record(
            RECORD,
            {"ref": p.ref, "address": p.ctr.address, "namespace": p.ctr.namespace, "refs": sorted({*kept, *added})},
        )
    created = p.ref in added
    if rc != 0:
        raise KataRunError(f"ctr image import exited {rc}: see its output above")
    if p.ref not in after:
        got = ", ".join(sorted(after - before)) or "nothing new"
        raise KataRunError(
            f"the archive did not give {p.ref} in containerd (namespace {p.ctr.namespace}); it imported: {got}. "
            f"Set answers.image.containerd_ref to the name the image has, or tag it so before docker save"
        )
    done = f"{p.ref} is in containerd ({p.ctr.address}, namespace {p.ctr.namespace})"
    return done if created else report_done(done + "; it was there before the import")


def undo_import(sink: EventSink, *, step: str = "image.import") -> str:
    """Remove the refs the import added (recorded); a ref that was there before is left."""
    rec = state.read_record(RECORD)
    if rec is None:
        return "nothing to undo: no image import recorded"
    c = Ctr(str(rec["address"]), str(rec["namespace"]))
    refs = [str(r) for r in rec.get("refs", [])]
    if not refs:
        state.drop_record(RECORD)
        return f"nothing to undo: {rec.get('ref')} was in containerd before the import; left there"
    present = c.images()
    removed = []
    for ref in refs:
        if ref not in present:
            continue
        rc, _ = stream(c.argv("images", "rm", "--sync", ref), sink, step=step)
        if rc != 0 and ref in c.images():
            raise KataRunError(
                f"ctr images rm {ref} exited {rc}; is a container still using it? (cai-tui kata container undo)"
            )
        removed.append(ref)
    state.drop_record(RECORD)
    if not removed:
        return "nothing to undo: the imported image is already gone"
    return f"removed {', '.join(removed)} from containerd ({c.address}, namespace {c.namespace})"


__all__ = ["ImportPlan", "check_space", "plan_import", "run_import", "undo_import"]
