"""Where the kata doers record what they changed, so that an undo (possibly from another process) can put it back.

One JSON file per doer under :func:`state_dir`: ``$CAI_TUI_STATE_DIR`` when set (the tests and the kata lab set it),
else ``/var/lib/cai-tui`` for root and ``~/.local/state/cai-tui`` for others. Writes are atomic (temporary file,
fsync, rename) and the files are mode 0600; a record that cannot be parsed is reported, never silently dropped.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

STATE_ENV = "CAI_TUI_STATE_DIR"


class StateError(Exception):
    """A record exists but cannot be read; the message names the file and what to do."""


def state_dir() -> Path:
    env = os.environ.get(STATE_ENV)
    if env:
        return Path(env).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/cai-tui")
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return Path(base) / "cai-tui"


def record_path(name: str) -> Path:
    """The file of the record ``name`` (e.g. ``kata-vfio``)."""
    return state_dir() / f"{name}.json"


def read_record(name: str) -> Any | None:
    """The record ``name``, or None when there is none."""
    path = record_path(name)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StateError(f"{path}: cannot read the undo record: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise StateError(
            f"{path}: the undo record is not valid JSON ({e.msg} at line {e.lineno}); "
            "move it aside and undo by hand with what it says"
        ) from None


def write_record(name: str, data: Any) -> Path:
    """Write the record ``name`` atomically (mode 0600); returns its path."""
    path = record_path(name)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def drop_record(name: str) -> None:
    """Remove the record ``name`` (after its undo succeeded)."""
    record_path(name).unlink(missing_ok=True)
