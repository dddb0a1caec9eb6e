"""The recipes opened or saved lately, for the start screen: ``<config dir>/recent.json``.

At most :data:`RECENT_MAX`, newest first, one entry per file. Files that no longer exist are dropped when the list
is read; a file that cannot be read or parsed is ignored with a warning (and replaced on the next save), never an
error: the list is a convenience. Reading needs only ``json``, so the start screen can show it before anything
heavy is imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RECENT_MAX = 10
FORMAT = "cai-tui/recent/v1"


@dataclass(frozen=True)
class RecentRecipe:
    path: Path
    flow: str = ""
    name: str = ""


def recent_file() -> Path:
    from ..paths import config_dir

    return config_dir() / "recent.json"


def load_recent(file: Path | None = None) -> tuple[list[RecentRecipe], list[str]]:
    """The remembered recipes that still exist, newest first; and warnings about the file itself."""
    file = file or recent_file()
    try:
        raw = file.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    except (OSError, UnicodeDecodeError) as e:
        return [], [f"{file}: the recent recipes could not be read ({_why(e)}); the list starts empty"]
    try:
        doc = json.loads(raw)
        entries = [_entry(item) for item in doc["recipes"]]
    except (ValueError, KeyError, TypeError) as e:
        return [], [f"{file}: not a list of recent recipes ({_why(e)}); it is ignored and replaced on the next save"]
    seen: set[Path] = set()
    out: list[RecentRecipe] = []
    for entry in entries:
        if entry.path in seen or not entry.path.is_file():
            continue
        seen.add(entry.path)
        out.append(entry)
    return out[:RECENT_MAX], []


def remember(path: str | os.PathLike[str], flow: str = "", name: str = "", file: Path | None = None) -> list[str]:
    """Put ``path`` first in the list (atomically rewritten); warnings when the list cannot be read or written."""
    from ..recipe.yaml_io import atomic_write

    file = file or recent_file()
    entries, warnings = load_recent(file)
    first = RecentRecipe(Path(os.path.abspath(Path(path).expanduser())), flow, name)
    entries = [first, *(e for e in entries if e.path != first.path)][:RECENT_MAX]
    doc = {
        "format": FORMAT,
        "recipes": [{"path": str(e.path), "flow": e.flow, "name": e.name} for e in entries],
    }
    try:
        atomic_write(file, (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8"), mode=0o600)
    except OSError as e:
        warnings.append(f"{file}: the recent recipes could not be saved ({_why(e)})")
    return warnings


def _entry(item: Any) -> RecentRecipe:
    if not isinstance(item, dict) or not isinstance(item.get("path"), str) or not item["path"]:
        raise TypeError("each entry needs a path")
    flow, name = item.get("flow", ""), item.get("name", "")
    return RecentRecipe(
        Path(item["path"]), flow if isinstance(flow, str) else "", name if isinstance(name, str) else ""
    )


def _why(e: Exception) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__
