"""KATA-1.8: set keys of a kata ``configuration.toml`` in place, keeping every other byte; back it up; put it back.

A key is named by its table path (``hypervisor.qemu.default_memory``) or bare (``guest_hook_path``) when one table
only has it (set or shipped commented out). The line is replaced where it stands — the commented ``#key = …`` of
kata ≤ 3.23 uncommented, the empty ``key = ""`` of 3.24+ filled — keeping its indentation, trailing comment and CRLF;
a key absent from a named table goes right under the table's header. The result must parse with tomllib and differ
from the original only in the keys set, or nothing is written.

Writing (``FILE.bak``, the atomic replace, the undo record) and restoring are :mod:`cai_tui.kata.config_write`.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass
from typing import Any

from ..parsers.kata_toml import KeyLine, duplicates, key_lines
from ..render.kata_config import toml_string

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10 has no tomllib; the project runs 3.11+
    import tomli as tomllib

_INT = re.compile(r"^[+-]?(0|[1-9](_?[0-9])*)$")
_FLOAT = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$")


class ConfigEditError(Exception):
    """What is wrong and the fix; ``exit_code`` 2 for input (file, key, value), 1 for a failed write or restore."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Change:
    path: str  # hypervisor.qemu.guest_hook_path
    line: int  # 1-based, in the edited text
    before: str | None  # the old line (None: inserted)
    after: str


@dataclass(frozen=True)
class Edit:
    source: str
    old: str
    new: str
    changes: tuple[Change, ...]

    @property
    def changed(self) -> bool:
        return self.old != self.new


# ------------------------------------------------------------------------------------------- reading


def read_config(path: str) -> tuple[bytes, str]:
    """The file's bytes and text; ConfigEditError (exit 2) when it cannot be read or is not UTF-8 TOML."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigEditError(
            f"{path} does not exist: name the kata configuration file in effect "
            "(`kata-runtime --show-default-config-paths`, KATA_CONF_FILE)"
        ) from None
    except IsADirectoryError:
        raise ConfigEditError(f"{path} is a directory: name the configuration.toml inside it") from None
    except OSError as e:
        raise ConfigEditError(f"{path}: cannot read it: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigEditError(f"{path} is not UTF-8 text (byte {e.start}): TOML files are UTF-8") from None
    _parse(text, path)
    return data, text


def _parse(text: str, source: str) -> dict[str, Any]:
    found = duplicates(text, source)
    if found:
        raise ConfigEditError(f"{source} is not valid TOML, nothing changed: " + "; ".join(found))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigEditError(
            f"{source} is not valid TOML ({e}); kata refuses it as it is: repair it first, nothing changed"
        ) from None


def _lookup(doc: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = doc
    for part in dotted.split(".") if dotted else []:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _set(doc: dict[str, Any], table: str, name: str, value: Any) -> None:
    node = doc
    for part in table.split(".") if table else []:
        node = node.setdefault(part, {})
    node[name] = value


# ------------------------------------------------------------------------------------------- keys


def _full(k: KeyLine) -> str:
    return f"{k.table}.{k.key}" if k.table else k.key


def _headers(text: str) -> dict[str, int]:
    from ..parsers.kata_toml import _Header, _walk

    found: dict[str, int] = {}
    for item in _walk(text):
        if isinstance(item, _Header) and not item.array:
            found.setdefault(item.table, item.line)
    return found


def resolve(text: str, key: str, source: str) -> tuple[str, str, list[KeyLine]]:
    """(table, key name, the lines of that key in that table) for ``key`` as the user wrote it."""
    key = key.strip()
    lines = key_lines(text)
    if "." in key:
        table, _, name = key.rpartition(".")
        hits = [k for k in lines if _full(k) == key]
        if hits or table in _headers(text):
            return table, name, [k for k in hits if k.table == table]
        where = sorted({_full(k) for k in lines if k.key == name})
        raise ConfigEditError(
            f"{source} has no table [{table}] (for {key})"
            + (f"; {name} is in: {', '.join(where)}" if where else "")
            + "; tables: "
            + ", ".join(f"[{t}]" for t in _headers(text))
        )
    hits = [k for k in lines if k.key == key]
    tables = list(dict.fromkeys(k.table for k in hits))
    if len(tables) == 1:
        return tables[0], key, hits
    if tables:
        listed = [
            f"{t + '.' if t else ''}{key} ({', '.join(f'line {k.line}' + (' commented' if k.commented else '') for k in hits if k.table == t)})"
            for t in tables
        ]
        raise ConfigEditError(
            f"{key} is in more than one table of {source}: {'; '.join(listed)}. Name the one you mean by its table "
            f"path, e.g. --set {tables[0] + '.' if tables[0] else ''}{key}=VALUE"
        )
    near = difflib.get_close_matches(key, sorted({k.key for k in lines} | {_full(k) for k in lines}), n=5, cutoff=0.6)
    raise ConfigEditError(
        f"{key} is not in {source} (neither set nor commented out)"
        + (f"; similar: {', '.join(near)}" if near else "")
        + ". To add a new key, name its table: --set TABLE.KEY=VALUE with TABLE one of "
        + ", ".join(t for t in _headers(text) if t)
    )


# ------------------------------------------------------------------------------------------- values


def literal(raw: str, current: Any, where: str) -> tuple[str, Any]:
    """The TOML text for the user's VALUE and its value: typed like the key's current (or shipped) value; a VALUE
    already written as TOML (``"…"``, ``[…]``) is taken as is."""
    text = raw.strip()
    if text[:1] in ('"', "'", "[", "{"):
        try:
            return text, tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError as e:
            raise ConfigEditError(f"{where}: {text} is not a TOML value ({e})") from None
    if isinstance(current, bool) or (current is None and text in ("true", "false")):
        if text not in ("true", "false"):
            raise ConfigEditError(f"{where} is a boolean: give true or false, not {raw!r}")
        return text, text == "true"
    if isinstance(current, int) or (current is None and _INT.match(text)):
        if not _INT.match(text):
            raise ConfigEditError(f"{where} is an integer: {raw!r} is not one")
        return text, int(text.replace("_", ""))
    if isinstance(current, float) or (current is None and _FLOAT.match(text)):
        try:
            return text, float(text)
        except ValueError:
            raise ConfigEditError(f"{where} is a number: {raw!r} is not one") from None
    if isinstance(current, (list, dict)):
        raise ConfigEditError(f'{where} is a {type(current).__name__}: write the value as TOML, e.g. ["a", "b"]')
    return toml_string(raw), raw


def _value_end(rest: str) -> int | None:
    """Where the value at the start of ``rest`` ends on this line; None when it goes on to other lines."""
    if rest.startswith(('"""', "'''")):
        end = rest.find(rest[:3], 3)
        return None if end < 0 else end + 3
    depth, quote, i = 0, "", 0
    while i < len(rest):
        c = rest[i]
        if quote:
            if quote == '"' and c == "\\":
                i += 1
            elif c == quote:
                quote = ""
                if depth == 0:
                    return i + 1
        elif c in "\"'":
            quote = c
        elif c in "[{":
            depth += 1
        elif c in "]}":
            depth -= 1
            if depth == 0:
                return i + 1
        elif c == "#" and depth == 0:
            return len(rest[:i].rstrip())
        i += 1
    return None if depth or quote else len(rest.rstrip())


def _replaced(line: str, name: str, value: str) -> str | None:
    """``line`` with ``name = value``, its indentation, trailing comment and CR kept; None for a multi-line value."""
    cr = "\r" if line.endswith("\r") else ""
    body = line[:-1] if cr else line
    indent = body[: len(body) - len(body.lstrip(" \t"))]
    rest = body[body.index("=") + 1 :].lstrip(" \t")
    end = _value_end(rest)
    if end is None:
        return None
    tail = rest[end:]  # trailing blanks and comment kept as they were
    tail = tail if tail.lstrip(" \t").startswith("#") or not tail.strip(" \t") else ""
    return f"{indent}{name} = {value}{tail}{cr}"


def _current(k: KeyLine, raw_line: str) -> Any:
    """The value a (commented) line holds, for typing; None when it does not parse alone."""
    body = raw_line.removesuffix("\r").lstrip(" \t").removeprefix("#")
    try:
        return tomllib.loads(f"v = {body.split('=', 1)[1].strip()}")["v"]
    except (tomllib.TOMLDecodeError, IndexError):
        return None


# ------------------------------------------------------------------------------------------- the edit


def parse_setting(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigEditError(f"--set {item!r}: write KEY=VALUE (e.g. guest_hook_path=/usr/share/oci/hooks)")
    return key.strip(), value


def edit(text: str, settings: list[tuple[str, str]], source: str) -> Edit:
    """``text`` with each (KEY, VALUE) set; ConfigEditError when a key or value is wrong (nothing is changed)."""
    doc = _parse(text, source)
    expected = _parse(text, source)
    new = text
    changes: list[Change] = []
    for key, raw in settings:
        table, name, hits = resolve(new, key, source)
        path = f"{table}.{name}" if table else name
        where = f"{path} in {source}"
        lines = new.split("\n")
        live = [k for k in hits if not k.commented]
        if live:
            target: KeyLine | None = live[0]
            current: Any = _lookup(doc, path)[1]
        else:
            target = hits[0] if hits else None
            current = _current(target, lines[target.line - 1]) if target else None
        text_value, value = literal(raw, current, where)
        if target is not None:
            old_line = lines[target.line - 1]
            replaced = _replaced(old_line, name, text_value)
            if replaced is None and not target.commented:
                raise ConfigEditError(
                    f"{where} (line {target.line}) holds a value written over several lines: edit it by hand"
                )
            if replaced is None:  # a commented multi-line value: the setting goes above it, the comment stays
                indent = old_line[: len(old_line) - len(old_line.lstrip(" \t"))].replace("#", "")
                cr = "\r" if old_line.endswith("\r") else ""
                lines.insert(target.line - 1, f"{indent}{name} = {text_value}{cr}")
                changes.append(Change(path, target.line, None, lines[target.line - 1]))
            elif replaced != old_line:
                lines[target.line - 1] = replaced
                changes.append(Change(path, target.line, old_line, replaced))
        else:
            header = _headers(new)[table]
            cr = "\r" if lines[header - 1].endswith("\r") else ""
            lines.insert(header, f"{name} = {text_value}{cr}")
            changes.append(Change(path, header + 1, None, lines[header]))
        new = "\n".join(lines)
        _set(expected, table, name, value)
    if new != text:
        got = _parse_result(new, source)
        if got != expected:
            raise ConfigEditError(
                f"the edit of {source} would change more than the keys set ({', '.join(k for k, _ in settings)}): "
                "nothing written; set them by hand",
                1,
            )
    return Edit(source, text, new, tuple(changes))


def _parse_result(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigEditError(f"the edited {source} would not be valid TOML ({e}): nothing written", 1) from None


def unified_diff(old: str, new: str, path: str) -> list[str]:
    """The unified diff, one line per item (CRs of CRLF files not shown)."""
    a = [ln.removesuffix("\r") for ln in old.split("\n")]
    b = [ln.removesuffix("\r") for ln in new.split("\n")]
    return list(difflib.unified_diff(a, b, f"{path}", f"{path} (edited)", lineterm=""))


__all__ = [
    "Change",
    "ConfigEditError",
    "Edit",
    "edit",
    "literal",
    "parse_setting",
    "read_config",
    "resolve",
    "unified_diff",
]
