"""Text shaping for the terminal: spec texts are YAML block scalars with hard line breaks."""

from __future__ import annotations

import re

_LIST_ITEM = re.compile(r"^\s*([-*•]|\d+[.)]|\$)\s")


def _cjk_punct(ch: str) -> bool:
    return "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def _joiner(left: str, right: str) -> str:
    """No space around Chinese punctuation or between two ideographs; a space otherwise (as the specs write it)."""
    if _cjk_punct(left) or _cjk_punct(right):
        return ""
    if "\u2e80" <= left <= "\u9fff" and "\u2e80" <= right <= "\u9fff":
        return ""
    return " "


def reflow(text: str) -> str:
    """Join hard-wrapped lines into paragraphs so the terminal wraps them to its width.

    Blank lines and list items keep their breaks; Chinese joins without a space where it needs none.
    """
    paragraphs: list[str] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        out = ""
        for line in (ln.strip() for ln in block.splitlines()):
            if not out:
                out = line
            elif _LIST_ITEM.match(line):
                out += "\n" + line
            else:
                out += _joiner(out[-1], line[0]) + line
        paragraphs.append(out)
    return "\n\n".join(paragraphs)


def command_lines(command: str) -> str:
    """A long ``a && b && c`` one-liner shown as one command per line."""
    parts = [p.strip() for p in command.strip().split(" && ")]
    return "\n  && ".join(parts)
