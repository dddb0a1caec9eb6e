"""The local tree: every file and directory under the source directory, and CRC-64 as OSS computes it."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from .options import MiB, UploadInputError


@dataclass(frozen=True)
class LocalFile:
    rel: str  # "/"-separated, relative to the source directory
    path: str
    size: int
    mtime_ns: int


@dataclass
class LocalTree:
    root: str
    files: list[LocalFile]
    dirs: list[str]  # every directory, "" for the root, parents before children

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def scan_tree(src_dir: str | os.PathLike[str]) -> LocalTree:
    """Every regular file (symlinks to files are followed) and directory under ``src_dir``, sorted."""
    root = os.path.abspath(os.fspath(src_dir))
    if not os.path.exists(root):
        raise UploadInputError(f"{root} does not exist")
    if not os.path.isdir(root):
        raise UploadInputError(f"{root} is not a directory; give the model directory")
    files: list[LocalFile] = []
    dirs: list[str] = [""]
    problems: list[str] = []

    def walk(path: str, rel: str) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            problems.append(f"{path}: cannot read the directory ({exc.strerror})")
            return
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                problems.append(f"{entry.path}: dangling symlink or unreadable entry")
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.is_symlink():
                    problems.append(f"{entry.path}: a symlink to a directory (not followed; copy the directory in)")
                    continue
                dirs.append(child)
                walk(entry.path, child)
            elif stat.S_ISREG(st.st_mode):
                if not os.access(entry.path, os.R_OK):
                    problems.append(f"{entry.path}: not readable")
                    continue
                files.append(LocalFile(child, entry.path, st.st_size, st.st_mtime_ns))
            else:
                problems.append(f"{entry.path}: not a regular file (device, socket or FIFO)")

    walk(root, "")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise UploadInputError(f"cannot upload {root}: {shown}")
    if not files:
        raise UploadInputError(f"{root} holds no files to upload")
    return LocalTree(root, files, dirs)


def crc64_of_file(path: str, chunk: int = 4 * MiB) -> tuple[int, int]:
    """(CRC-64/ECMA as OSS computes it, bytes read), streaming."""
    from oss2.utils import Crc64

    crc = Crc64()
    n = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            crc.update(data)
            n += len(data)
    return int(crc.crc), n


def crc64_of(data: bytes) -> int:
    from oss2.utils import Crc64

    crc = Crc64()
    crc.update(data)
    return int(crc.crc)
