"""KATA-1.8: install an edit of kata's ``configuration.toml`` and put the original back (the undo).

``write`` keeps the original as ``FILE.bak`` — never overwritten by a later run: it holds the file from before the
first edit; a ``FILE.bak`` that is not this tool's is refused — replaces the file atomically (mode and owner kept) and
records both hashes under :mod:`cai_tui.kata.state` (record ``kata-config``). ``restore`` renames ``FILE.bak`` back
(byte for byte, the backup gone) when the file is still what was written; without a record it leaves the backup alone
unless forced.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from typing import Any

from . import state
from .config_edit import ConfigEditError, unified_diff

RECORD = "kata-config"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def backup_path(path: str) -> str:
    return path + ".bak"


def _atomic_write(path: str, data: bytes, like: str) -> None:
    """``data`` into ``path`` through a temporary file beside it, with the mode and owner of ``like``."""
    directory = os.path.dirname(os.path.abspath(path))
    st = os.stat(like)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".cai-tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, st.st_mode & 0o7777)
        if os.geteuid() == 0:
            os.chown(tmp, st.st_uid, st.st_gid)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _records() -> dict[str, Any]:
    rec = state.read_record(RECORD)
    return rec if isinstance(rec, dict) and isinstance(rec.get("files"), dict) else {"files": {}}


def write(path: str, old: bytes, new_text: str) -> str:
    """Install ``new_text`` atomically, keeping the original as ``FILE.bak``; returns the backup's path."""
    key = os.path.realpath(path)
    rec = _records()
    entry = rec["files"].get(key)
    bak = backup_path(path)
    try:
        with open(bak, "rb") as f:
            bak_data: bytes | None = f.read()
    except FileNotFoundError:
        bak_data = None
    except OSError as e:
        raise ConfigEditError(f"{bak}: cannot read the existing backup: {e.strerror or e}", 1) from None
    if bak_data is None:
        _atomic_write(bak, old, path)
        original = _sha(old)
    elif entry is not None and _sha(bak_data) == entry.get("original_sha256"):
        original = entry["original_sha256"]  # the backup of the first edit: the file as it was before cai-tui
    elif bak_data == old:
        original = _sha(old)
    else:
        raise ConfigEditError(
            f"{bak} exists and is not cai-tui's backup of {path} (it differs from the file): move it aside "
            f"(mv {bak} {bak}.old) and run again; nothing changed",
            1,
        )
    data = new_text.encode("utf-8")
    rec["files"][key] = {"path": path, "backup": bak, "original_sha256": original, "written_sha256": _sha(data)}
    state.write_record(RECORD, rec)
    try:
        _atomic_write(path, data, path)
    except OSError as e:
        raise ConfigEditError(f"{path}: cannot write it: {e.strerror or e}; it is unchanged", 1) from None
    return bak


@dataclass(frozen=True)
class Restored:
    path: str
    backup: str
    restored: bool
    message: str
    diff: tuple[str, ...] = ()


def restore(path: str, *, force: bool = False) -> Restored:
    """Put ``FILE.bak`` back (one rename: byte for byte, the backup gone) when cai-tui recorded writing ``path`` and
    the file is still what it wrote; ``force`` restores a backup without a record or over later edits."""
    key = os.path.realpath(path)
    rec = _records()
    entry = rec["files"].get(key)
    bak = backup_path(path)
    if not os.path.exists(bak):
        if entry is not None:
            del rec["files"][key]
            _save(rec)
        return Restored(path, bak, False, f"nothing to undo: {bak} does not exist")
    try:
        with open(bak, "rb") as f:
            bak_data = f.read()
        with open(path, "rb") as f:
            cur: bytes | None = f.read()
    except FileNotFoundError:
        cur = None
    except OSError as e:
        raise ConfigEditError(f"cannot read {path} or {bak}: {e.strerror or e}", 1) from None
    if entry is None and not force:
        return Restored(
            path,
            bak,
            False,
            f"nothing to undo: cai-tui has no record of editing {path} (in {state.state_dir()}); {bak} is left "
            "alone — add --force to put it back anyway",
        )
    known = (entry or {}).get("written_sha256"), (entry or {}).get("original_sha256")
    if entry is not None and not force and cur is not None and _sha(cur) not in known:
        raise ConfigEditError(
            f"{path} changed since cai-tui wrote it: restoring {bak} would lose those edits. Compare them "
            f"(diff -u {bak} {path}) and restore by hand, or add --force",
            1,
        )
    old_text = (cur or b"").decode("utf-8", "replace")
    diff = unified_diff(old_text, bak_data.decode("utf-8", "replace"), path)
    os.replace(bak, path)
    _fsync_dir(os.path.dirname(os.path.abspath(path)))
    if entry is not None:
        del rec["files"][key]
        _save(rec)
    return Restored(path, bak, True, f"restored {path} from {bak} (byte for byte; the backup is gone)", tuple(diff))


def _save(rec: dict[str, Any]) -> None:
    if rec["files"]:
        state.write_record(RECORD, rec)
    else:
        state.drop_record(RECORD)


__all__ = ["RECORD", "Restored", "backup_path", "restore", "write"]
