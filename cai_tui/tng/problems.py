"""What a TNG configuration check reports: each problem at its JSON path, in TNG's (serde's) words, with the fix."""

from __future__ import annotations

import re
from dataclasses import dataclass

SUPPORTED = "1.0.x and 2.x"


@dataclass(frozen=True)
class Problem:
    path: str  # JSON path, e.g. add_ingress[0].verify; "" for the document itself
    message: str  # what TNG says (serde's wording where TNG's is serde's)
    fix: str  # what to change

    def line(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class TngConfigError(ValueError):
    """A configuration TNG would refuse; ``messages`` are in TNG's (serde's) own words, ``problems`` add path and fix."""

    def __init__(self, messages: list[str], problems: list[Problem] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages
        self.problems = problems if problems is not None else [Problem("", m, "") for m in messages]


def parse_version(text: str) -> tuple[int, int, int]:
    from ..render.base import RenderError  # here: cai_tui.render imports this module

    m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", text.strip())
    if not m:
        raise RenderError(f"answers.tng.version {text!r} is not a version like 1.0.3")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def check_supported(version: str) -> tuple[int, int, int]:
    from ..render.base import RenderError

    v = parse_version(version)
    if v[0] not in (1, 2) or (v[0] == 1 and v[1] != 0):
        raise RenderError(f"TNG {version} is not supported here (supported: {SUPPORTED})")
    return v


def serde_expected(names: list[str]) -> str:
    ticks = [f"`{n}`" for n in names]
    if not ticks:
        return "there are no fields"
    if len(ticks) == 1:
        return f"expected {ticks[0]}"
    if len(ticks) == 2:
        return f"expected {ticks[0]} or {ticks[1]}"
    return "expected one of " + ", ".join(ticks)


def json_path(loc: tuple[object, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
