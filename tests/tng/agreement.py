"""The models against an oracle on TNG's own doc examples (tests/fixtures/tng/<version>/), per version.

The oracle, honestly stated per version:
- 2.8.0 examples: the real ``tng`` 2.12.0 binary of the tng-sdk wheel (the newest TNG we can run; the mirror's docs stop
  at v2.8.0). It judges each example in a network namespace of its own (cai_tui.tng.binary_judge); the models judge
  the same example as TNG 2.8.0. Where 2.12 differs from 2.8 the binary wins, and the table says so by disagreeing.
- 1.0.3 and 1.0.6 examples: no 1.0.x binary runs here (the wheel ships 2.12 only, the 1.0.x images are not pulled),
  so the oracle is the docs' own claim that each example is a valid configuration of that release. The 2.12 binary's
  verdict on them is shown beside, for information only (2.x changed the schema, e.g. ``netfilter.dst``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cai_tui.tng.schema import problems

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tng"
VERSIONS = ("1.0.3", "1.0.6", "2.8.0")
BINARY_ORACLE = {"2.8.0"}  # the versions whose oracle is the binary


@dataclass
class Case:
    version: str
    file: str
    source: str
    kind: str
    config: Any


@dataclass
class Outcome:
    case: Case
    oracle_valid: bool
    oracle: str
    models_valid: bool
    models_problems: list[str]
    binary_note: str = ""

    @property
    def agreed(self) -> bool:
        return self.oracle_valid == self.models_valid


def cases(version: str) -> list[Case]:
    index = json.loads((FIXTURES / version / "index.json").read_text("utf-8"))
    return [
        Case(
            version, e["file"], e["source"], e["kind"], json.loads((FIXTURES / version / e["file"]).read_text("utf-8"))
        )
        for e in index["examples"]
    ]


def judge_case(case: Case, binary: str | None) -> Outcome:
    from cai_tui.tng import binary_judge

    found = [p.line() for p in problems(case.config, case.version)]
    note = ""
    if binary is not None:
        run, _notes = binary_judge.judge(binary, case.config)
        note = f"{run.outcome} ({run.stage}){': ' + run.message if run.outcome == 'refused' else ''}"
    if case.version in BINARY_ORACLE:
        if binary is None:
            raise RuntimeError("the tng binary is the oracle for 2.x and is missing: pip install 'cai-tui[tng]'")
        return Outcome(case, note.startswith("accepted"), "tng 2.12.0 binary", not found, found, note)
    return Outcome(case, True, "the docs' claim (valid)", not found, found, note)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| TNG docs | oracle | examples | agreed | disagreed |", "|---|---|---|---|---|"]
    for v in VERSIONS:
        mine = [o for o in outcomes if o.case.version == v]
        if not mine:
            continue
        agreed = sum(o.agreed for o in mine)
        rows.append(f"| v{v} | {mine[0].oracle} | {len(mine)} | {agreed} | {len(mine) - agreed} |")
    return "\n".join(rows)
