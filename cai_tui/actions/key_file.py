"""CAI-1.4: the model's key file (gocryptfs password, or the Sam key) — created once, never overwritten.

The recipe names the key by reference (``answers.model.password`` for gocryptfs, ``answers.model.sam.key`` for Sam).
Only a ``file:`` reference can be written: a fresh random password, one line, mode 0600, its new parent folders 0700,
written to a temporary file and linked into place (so a file that appeared meanwhile is not replaced). The value is
never printed. ``env:``/``keyring:``/``prompt`` references have nothing to write.
"""

from __future__ import annotations

import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PASSWORD_BYTES = 24  # token_urlsafe(24): 32 characters of [A-Za-z0-9_-]
FIX_FAQ = "recipe-secret-unavailable"


@dataclass(frozen=True)
class KeyRef:
    field: str  # answers.model.password / answers.model.sam.key
    ref: Any  # SecretRef | None
    method: str  # gocryptfs | sam

    @property
    def path(self) -> Path | None:
        """The file of a ``file:`` reference (``~`` expanded), else None."""
        if self.ref is not None and self.ref.scheme == "file":
            return Path(os.path.expanduser(self.ref.target))
        return None


def key_ref(answers: Any) -> KeyRef:
    """Which reference holds the model key for the recipe's encryption method."""
    model = answers.model
    if model.encryption_method == "sam":
        return KeyRef("answers.model.sam.key", model.sam.key, "sam")
    return KeyRef("answers.model.password", model.password, "gocryptfs")


def inspect(path: Path) -> tuple[str, str]:
    """("absent"|"ok"|"bad"|"open", words) for a key file; "open" is readable by group or others."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return "absent", f"{path} does not exist"
    except OSError as e:
        return "bad", f"cannot read {path}: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        return "bad", f"{path} is not a regular file"
    try:
        raw = path.read_bytes()
    except OSError as e:
        return "bad", f"cannot read {path}: {e.strerror}"
    first = raw.split(b"\n", 1)[0].rstrip(b"\r")
    if not first:
        return "bad", f"{path} is empty (its first line is the key; gocryptfs reads only that line)"
    try:
        first.decode("utf-8")
    except UnicodeDecodeError:
        return "bad", f"{path} is not UTF-8 text"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        return "open", f"{path} is readable by others (mode {mode:04o}): run chmod 600 {path}"
    return "ok", f"{path} holds a key ({len(first)} bytes on its first line, mode {mode:04o})"


def _make_parents(parent: Path) -> None:
    """Create the missing folders above the key file with mode 0700 (existing ones are left as they are)."""
    missing: list[Path] = []
    p = parent
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            pass
        os.chmod(d, 0o700)  # whatever the umask says


def create(path: Path) -> int:
    """Write a fresh random password to ``path`` (which must not exist); its length in characters.

    FileExistsError when the file exists (also when it appeared during the write: it is kept)."""
    from ..recipe.yaml_io import fsync_dir

    value = secrets.token_urlsafe(PASSWORD_BYTES)
    _make_parents(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(value.encode("ascii") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # never replaces: FileExistsError when something is there
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    fsync_dir(path.parent)
    return len(value)


__all__ = ["FIX_FAQ", "KeyRef", "create", "inspect", "key_ref"]
