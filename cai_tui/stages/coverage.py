"""Which procedure-map IDs (shared/reference/procedure-map.md) the stage specs cover."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .spec import STEP_ID_RE, StageSpec

ROW_RE = re.compile(r"^\|\s*((?:CAI|KATA)-[0-9A-Z.]+)\s*\|\s*([^|]+?)\s*\|")


@dataclass(frozen=True)
class MapStep:
    id: str
    title: str


def parse_procedure_map(text: str) -> list[MapStep]:
    steps = []
    for line in text.splitlines():
        m = ROW_RE.match(line.strip())
        if m and STEP_ID_RE.match(m.group(1)):
            steps.append(MapStep(m.group(1), m.group(2)))
    return steps


def load_procedure_map(path: Path) -> list[MapStep]:
    return parse_procedure_map(path.read_text(encoding="utf-8"))


def uncovered(map_steps: list[MapStep], stages: list[StageSpec]) -> list[str]:
    covered = {c for s in stages for c in s.covers}
    return [m.id for m in map_steps if m.id not in covered]
