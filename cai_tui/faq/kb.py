"""Load and validate the FAQ knowledge base shipped in ``assets/faq/*.yaml``.

Problems come back as ``file:line: field: message`` lines (the recipe loader's format), all of them at once:
malformed YAML, unknown keys, missing translations, bad regexes (naming the entry and the regex), duplicate ids.
Check ids that no registered check has are listed in ``unknown_checks``, not fatal: checks land separately.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..recipe.problems import Problem, RecipeError, mapping_line, problems_from_validation
from .model import FaqEntry

MAX_FILE_BYTES = 1024 * 1024


class FaqError(RecipeError):
    """Problems in FAQ files (same line format as recipe problems)."""


@dataclass(frozen=True)
class KnowledgeBase:
    entries: tuple[FaqEntry, ...]
    origin: dict[str, str] = field(default_factory=dict)  # id -> "file:line"
    unknown_checks: tuple[str, ...] = ()  # check ids named here that no registered check has (yet)
    _by_id: dict[str, FaqEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {e.id: e for e in self.entries})

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[FaqEntry]:
        return iter(self.entries)

    def __contains__(self, faq_id: object) -> bool:
        return faq_id in self._by_id

    def ids(self) -> list[str]:
        return sorted(self._by_id)

    def get(self, faq_id: str) -> FaqEntry:
        try:
            return self._by_id[faq_id]
        except KeyError:
            raise KeyError(f"no FAQ entry {faq_id!r}") from None

    def for_check(self, check_id: str) -> list[FaqEntry]:
        """Entries a check's failure may point at: named in applies_to.checks, related_checks or a check pattern."""
        return [e for e in self.entries if check_id in e.check_ids()]

    def for_service(self, service: str) -> list[FaqEntry]:
        return [e for e in self.entries if service in e.applies_to.services]


def _read(path: Path) -> tuple[Any, list[Problem]]:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    name = str(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        return None, [Problem(name, None, "", f"cannot read: {e.strerror}")]
    if len(raw) > MAX_FILE_BYTES:
        return None, [Problem(name, None, "", f"larger than {MAX_FILE_BYTES // 1024} KiB; split it by area")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        return None, [Problem(name, None, "", f"not UTF-8 text (bad byte at offset {e.start})")]
    try:
        doc = YAML(typ="rt").load(text)
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        return None, [Problem(name, line, "", f"malformed YAML: {(e.problem or 'syntax error').strip()}")]
    except YAMLError as e:
        return None, [Problem(name, None, "", f"malformed YAML: {type(e).__name__}")]
    return doc, []


def _entry_label(raw: Any, index: int) -> str:
    ident = raw.get("id") if isinstance(raw, dict) else None
    return ident if isinstance(ident, str) and ident else f"entries[{index}]"


def load_file(path: Path) -> tuple[list[tuple[FaqEntry, int | None]], list[Problem]]:
    """The entries of one file with their line numbers, and the problems found (entries with problems are left out)."""
    name = str(path)
    doc, problems = _read(path)
    if problems:
        return [], problems
    if not isinstance(doc, dict):
        return [], [Problem(name, 1, "", "an FAQ file is a mapping with one key, entries: [ … ]")]
    for key in doc:
        if key != "entries":
            problems.append(Problem(name, mapping_line(doc, [key]), str(key), f"unknown key {key!r}; only entries:"))
    raw_entries = doc.get("entries")
    if not isinstance(raw_entries, list) or not raw_entries:
        problems.append(Problem(name, mapping_line(doc, ["entries"]), "entries", "a non-empty list of FAQ entries"))
        return [], problems
    out: list[tuple[FaqEntry, int | None]] = []
    for i, raw in enumerate(raw_entries):
        label = _entry_label(raw, i)
        line = mapping_line(doc, ["entries", i])

        def line_of(loc: Sequence[str | int], i: int = i) -> int | None:
            return mapping_line(doc, ["entries", i, *loc])

        try:
            entry = FaqEntry.model_validate(raw)
        except ValidationError as e:
            for p in problems_from_validation(e, FaqEntry, file=name, line_of=line_of, strip_tag=False):
                fld = f"{label}.{p.field}" if p.field else label
                problems.append(Problem(p.file, p.line, fld, p.message))
            continue
        out.append((entry, line))
    return out, problems


def load_kb(dir: Path | None = None) -> KnowledgeBase:
    """Load every ``*.yaml`` under ``dir`` (default: the shipped ``assets/faq``); raise :class:`FaqError`."""
    from ..catalog import known_ids
    from ..resources import data_dir

    base = dir if dir is not None else data_dir("assets") / "faq"
    if not base.is_dir():
        raise FaqError([Problem(str(base), None, "", "no FAQ folder here")])
    files = sorted(base.glob("*.yaml"))
    if not files:
        raise FaqError([Problem(str(base), None, "", "no FAQ files (*.yaml) in this folder")])
    problems: list[Problem] = []
    entries: list[FaqEntry] = []
    origin: dict[str, str] = {}
    for path in files:
        loaded, file_problems = load_file(path)
        problems.extend(file_problems)
        for entry, line in loaded:
            where = f"{path}:{line}" if line else str(path)
            if entry.id in origin:
                problems.append(
                    Problem(
                        str(path),
                        line,
                        f"{entry.id}.id",
                        f"duplicate id {entry.id!r}; first defined at {origin[entry.id]}",
                    )
                )
                continue
            origin[entry.id] = where
            entries.append(entry)
    if problems:
        raise FaqError(problems)
    known = known_ids("checks")
    named = {cid for e in entries for cid in e.check_ids()}
    return KnowledgeBase(tuple(entries), origin, tuple(sorted(named - known)))


@cache
def default_kb() -> KnowledgeBase:
    """The shipped knowledge base, loaded once per process."""
    return load_kb()
