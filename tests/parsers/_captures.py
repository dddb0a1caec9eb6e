"""Load captured command outputs: ``# $ <command>`` first line, ``# rc=N`` last line, body in between.

Hand-made fixtures (tests/fixtures/parsers) start with ``## `` lines saying where their shape came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

CAPTURES = REPO / "tests" / "fixtures" / "captures" / "h100-vm-2026-11-22"
FIXTURES = REPO / "tests" / "fixtures" / "parsers"


@dataclass(frozen=True)
class Capture:
    path: Path
    command: str
    body: str
    rc: int | None  # None: "# rc=?" (the source did not show the exit code)
    provenance: str


def load(path: Path) -> Capture:
    lines = path.read_text("utf-8").splitlines(keepends=True)
    provenance: list[str] = []
    while lines and lines[0].startswith("## "):
        provenance.append(lines.pop(0)[3:].rstrip())
    assert lines and lines[0].startswith("# $ "), f"{path}: first line must be '# $ <command>'"
    assert len(lines) >= 2 and lines[-1].startswith("# rc="), f"{path}: last line must be '# rc=N'"
    rc = lines[-1].strip()[len("# rc=") :]
    return Capture(
        path=path,
        command=lines[0][len("# $ ") :].rstrip("\n"),
        body="".join(lines[1:-1]),
        rc=None if rc == "?" else int(rc),
        provenance="\n".join(provenance),
    )


def capture(name: str) -> Capture:
    """A real capture from the H100 VM (unmodified)."""
    return load(CAPTURES / name)


def fixture(name: str) -> Capture:
    """A hand-made fixture; it must say where its shape came from."""
    c = load(FIXTURES / name)
    assert c.provenance, f"{name}: no '## ' provenance lines"
    return c
