"""Safe shell words and multi-line commands.

Every value goes through :func:`q` (``shlex.quote``), so a path with spaces, quotes or ``$(...)`` stays one
argument and is never expanded. Paths starting with ``~/`` are rendered as ``"$HOME"/…`` so the shell still expands
the home directory (a quoted ``~`` would not be).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Raw:
    """A word written as is (a variable reference the script sets itself, an operator). Never user input."""

    text: str


Word = str | Raw


def q(value: str) -> str:
    return shlex.quote(value)


def qpath(path: str, prefix: str = "") -> str:
    """``prefix + path`` as one shell word, keeping ``~``/``~/`` expandable to the home directory."""
    if path == "~" or path.startswith("~/"):
        rest = path[1:]
        return (q(prefix) if prefix else "") + '"$HOME"' + (q(rest) if rest else "")
    return q(prefix + path)


def word(w: Word) -> str:
    return w.text if isinstance(w, Raw) else q(w)


def line(words: Iterable[Word]) -> str:
    return " ".join(word(w) for w in words)


def multiline(first: Sequence[Word], *groups: Sequence[Word], indent: str = "    ") -> str:
    """``first`` on the first line, each group on its own continuation line (`` \\`` at the end of the previous)."""
    lines = [line(first)] + [indent + line(g) for g in groups if g]
    return " \\\n".join(lines)


def script(body: Sequence[str], *, header: Sequence[str] = (), strict: bool = True) -> str:
    """A bash script: shebang, comment header, ``set -euo pipefail``, the body lines."""
    out = ["#!/bin/bash"]
    out += [comment(h) if h else "#" for h in header]
    if strict:
        out.append("set -euo pipefail")
    out += list(body)
    return "\n".join(out) + "\n"


def comment(text: str) -> str:
    """A comment line; newlines in ``text`` cannot escape the comment."""
    return "# " + " ".join(text.splitlines())
