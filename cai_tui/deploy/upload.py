"""Putting the generated files on the target: parents created, the old file kept as ``FILE.bak`` (same mode), the
new one written atomically (SFTP temp + rename for SSH, temp + rename locally) and its mode checked afterwards.

Nothing the user had is lost: a file whose content differs is copied to ``FILE.bak`` before it is replaced; an
identical file is left alone (so a second deploy does not overwrite the first backup with the same content).
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from ..targets.base import Target, TargetError

FILE_OP_TIMEOUT = 30.0
MAX_BACKUP_BYTES = 16 * 1024 * 1024


class UploadError(Exception):
    """A file could not be put on the target as planned (exit 3: the target refused)."""


@dataclass
class FileOutcome:
    path: str
    mode: int
    written: bool = False
    unchanged: bool = False
    backup: str | None = None  # FILE.bak when the old content was kept
    backup_mode: int | None = None
    mode_verified: bool = False
    created_dirs: str | None = None


async def remote_home(target: Target) -> str:
    """$HOME as the target's login shell has it (the remote user's home, not ours)."""
    r = await target.run(["sh", "-c", 'printf "%s\\n" "$HOME"'], timeout=FILE_OP_TIMEOUT)
    home = r.stdout.strip()
    if r.rc != 0 or not home.startswith("/"):
        raise UploadError(f"cannot learn $HOME on {target.name} (rc {r.rc}): {(r.stderr or r.stdout).strip()}")
    return home


async def file_mode(target: Target, path: str) -> int | None:
    """The permission bits of ``path`` (following links) via ``stat``; None when it does not exist."""
    r = await target.run(["stat", "-L", "-c", "%a", "--", path], timeout=FILE_OP_TIMEOUT)
    if r.rc != 0:
        if not await target.exists(path):
            return None
        raise UploadError(f"cannot stat {path} on {target.name} (rc {r.rc}): {r.stderr.strip()}")
    try:
        return int(r.stdout.strip(), 8)
    except ValueError:
        raise UploadError(f"unexpected `stat -c %a {path}` output on {target.name}: {r.stdout.strip()!r}") from None


async def _ensure_dir(target: Target, directory: str) -> bool:
    if await target.exists(directory):
        return False
    r = await target.run(["mkdir", "-p", "--", directory], timeout=FILE_OP_TIMEOUT)
    if r.rc != 0:
        raise UploadError(f"cannot create {directory} on {target.name}: {r.stderr.strip() or f'rc {r.rc}'}")
    return True


async def _write_verified(target: Target, path: str, data: bytes, mode: int) -> None:
    try:
        await target.write_file(path, data, mode=mode)
    except (OSError, TargetError) as e:
        raise UploadError(f"cannot write {path} on {target.name}: {e}") from None
    got = await file_mode(target, path)
    if got != mode:
        shown = "missing" if got is None else f"{got:04o}"
        raise UploadError(f"{path} on {target.name} has mode {shown} after writing, expected {mode:04o}")


async def upload_file(target: Target, path: str, data: bytes, mode: int) -> FileOutcome:
    """Write ``data`` to ``path`` with ``mode``; an existing, different file is kept as ``path.bak`` first."""
    out = FileOutcome(path=path, mode=mode)
    parent = posixpath.dirname(path)
    if parent and await _ensure_dir(target, parent):
        out.created_dirs = parent
    old_mode = await file_mode(target, path)
    if old_mode is not None:
        try:
            old = await target.read_file(path, max_bytes=MAX_BACKUP_BYTES + 1)
        except IsADirectoryError:
            raise UploadError(f"{path} on {target.name} is a directory; move it away or choose another path") from None
        except (OSError, TargetError) as e:
            raise UploadError(f"cannot read the existing {path} on {target.name} to back it up: {e}") from None
        if len(old) > MAX_BACKUP_BYTES:
            raise UploadError(f"the existing {path} on {target.name} is over 16 MiB; move it away first")
        if old == data and old_mode == mode:
            out.unchanged = out.mode_verified = True
            return out
        if old != data:
            out.backup, out.backup_mode = path + ".bak", old_mode
            await _write_verified(target, out.backup, old, old_mode)
    await _write_verified(target, path, data, mode)
    out.written = out.mode_verified = True
    return out
