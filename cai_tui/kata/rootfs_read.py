"""Files inside an unmounted ext4 rootfs.img, read with ``debugfs`` (e2fsprogs) — no mount, nothing changed.

What the plan reads before anything starts (the ELF header of the image's /bin/sh) and what a check can read after
KATA-1.7 unmounted the image (the prestart hook: its type, mode and text). Symlinks are followed inside the image
(an absolute target is the image's, never the host's); intermediate symlinked directories (/bin -> usr/bin) are
followed by debugfs itself.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from dataclasses import dataclass

from .rootfs_run import run_quiet

MAX_LINKS = 8
_TYPE = re.compile(r"Type:\s+(\S+)\s+Mode:\s+([0-7]+)")


@dataclass(frozen=True)
class ImageStat:
    path: str  # the path after following symlinks
    kind: str  # regular, directory, symlink, …  (debugfs's words)
    mode: int  # permission bits


def _stat_once(image: str, path: str) -> tuple[str, int, str | None] | None:
    r = run_quiet(["debugfs", "-R", f"stat {path}", image])
    m = _TYPE.search(r.stdout)
    if r.returncode != 0 or m is None:
        return None
    dest = next((ln.split('"', 2)[1] for ln in r.stdout.splitlines() if "link dest:" in ln and '"' in ln), None)
    return m.group(1), int(m.group(2), 8), dest


def stat_in_image(image: str, path: str) -> ImageStat | None:
    """The file ``path`` inside ``image`` with its symlinks followed; None when absent (or a link loop)."""
    for _ in range(MAX_LINKS):
        got = _stat_once(image, path)
        if got is None:
            return None
        kind, mode, dest = got
        if kind != "symlink":
            return ImageStat(path, kind, mode)
        if dest is None:
            return None
        path = dest if dest.startswith("/") else posixpath.normpath(posixpath.join(posixpath.dirname(path), dest))
    return None


def read_in_image(image: str, path: str, max_bytes: int = 1 << 20) -> bytes | None:
    """The first ``max_bytes`` of the regular file ``path`` inside ``image``; None when it is absent or not a file."""
    st = stat_in_image(image, path)
    if st is None or st.kind != "regular":
        return None
    with tempfile.TemporaryDirectory(prefix="cai-tui-rootfs-") as tmp:
        out = os.path.join(tmp, "f")
        r = run_quiet(["debugfs", "-R", f"dump {st.path} {out}", image])
        if r.returncode != 0 or not os.path.isfile(out):
            return None
        with open(out, "rb") as f:
            return f.read(max_bytes)


__all__ = ["ImageStat", "read_in_image", "stat_in_image"]
