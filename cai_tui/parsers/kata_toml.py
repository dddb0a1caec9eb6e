"""Kata Containers ``configuration.toml``: the GPU-passthrough keys, and which file is in effect.

The keys (upstream ``src/runtime/config/configuration-qemu.toml.in``): in ``[hypervisor.<name>]``:
``kernel_params``, ``guest_hook_path``, ``hot_plug_vfio`` / ``cold_plug_vfio`` (no-port|bridge-port|root-port|
switch-port), ``pcie_root_port``, ``default_memory`` (MiB), ``enable_annotations``; in ``[runtime]``: ``vfio_mode``.
Up to kata 3.23 the templates ship ``#guest_hook_path = "/usr/share/oci/hooks"`` (commented out) and the vfio keys
commented out; from 3.24 on they ship ``guest_hook_path = ""`` — set, but empty, which disables guest hooks (the agent
adds hooks only for a non-empty path) — and ``hot_plug_vfio = cold_plug_vfio = "no-port"``, ``pcie_root_port = 0``.
Parsing only — the edit (keeping comments, line endings and order) is the kata-config-patch script.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from cai_tui.parsers.errors import ParseError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    tomllib = None

# Where the kata runtime looks, in order, when KATA_CONF_FILE is not set (kata-deploy installs under /opt/kata).
SEARCH_ORDER: tuple[str, ...] = (
    "/etc/kata-containers/configuration.toml",
    "/usr/share/defaults/kata-containers/configuration.toml",
    "/opt/kata/share/defaults/kata-containers/configuration-qemu-virtcca.toml",
)
ENV_OVERRIDE = "KATA_CONF_FILE"


def effective_config_path(env: Mapping[str, str], existing: Collection[str]) -> str | None:
    """The configuration file the kata runtime would load.

    ``env``: the runtime's environment; ``existing``: which candidate paths exist (the caller checks
    ``KATA_CONF_FILE`` and :data:`SEARCH_ORDER`). ``KATA_CONF_FILE`` wins when set — and when that file is missing the
    runtime fails instead of falling back, so the answer is None. Otherwise the first existing path of
    :data:`SEARCH_ORDER`, or None.
    """
    override = env.get(ENV_OVERRIDE, "").strip()
    if override:
        return override if override in existing else None
    for path in SEARCH_ORDER:
        if path in existing:
            return path
    return None


# ------------------------------------------------------------------------------------------- lines, as written

_SEGMENT = r"""(?:[A-Za-z0-9_-]+|"[^"\\\n]*"|'[^'\n]*')"""
_DOTTED = rf"{_SEGMENT}(?:[ \t]*\.[ \t]*{_SEGMENT})*"
_HEADER = re.compile(rf"^[ \t]*(\[\[?)[ \t]*({_DOTTED})[ \t]*\]\]?[ \t]*(?:#.*)?$")
_KEY = re.compile(rf"^[ \t]*(#[ \t]*)?({_DOTTED})[ \t]*=")


def _dotted(name: str) -> str:
    """``hypervisor . "qemu"`` → ``hypervisor.qemu`` (segments unquoted; a quoted segment holding a dot is rare here)."""
    return ".".join(part.strip().strip("\"'") for part in name.split("."))


@dataclass(frozen=True)
class KeyLine:
    """One line that sets a key (or would, uncommented), where it stands: for messages that name file:line."""

    line: int  # 1-based
    table: str  # dotted name of the table it falls into; "" for the top level, before any [table] header
    key: str
    text: str  # the line, stripped
    commented: bool  # ``#key = …``: the shape upstream ships disabled keys in


def table_label(table: str) -> str:
    return f"[{table}]" if table else "the top level (before any [table] header)"


@dataclass(frozen=True)
class _Header:
    line: int
    table: str
    array: bool  # [[name]]: each such header starts a new table


def _walk(text: str) -> Iterator[_Header | KeyLine]:
    """Headers and key lines in order (TOML lines end at LF; a CR before it is part of the line ending). Lines inside
    multi-line strings are skipped."""
    table = ""
    in_string: str | None = None
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group(2))
            yield _Header(n, table, header.group(1) == "[[")
            continue
        m = _KEY.match(line)
        if m is None:
            continue
        yield KeyLine(n, table, _dotted(m.group(2)), line.strip(), commented=bool(m.group(1)))
        if not m.group(1):
            in_string = next((q for q in ('"""', "'''") if line.count(q) % 2), None)


def key_lines(text: str, key: str | None = None) -> list[KeyLine]:
    """The lines that set ``key`` (every key when None), commented out or not, each with its table.

    A line scan, not a parse: it also works on a file that TOML refuses (to say where the problem is).
    """
    return [k for k in _walk(text) if isinstance(k, KeyLine) and (key is None or k.key == key)]


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _times(count: int) -> str:
    return {2: "twice", 3: "three times"}.get(count, f"{count} times")


def duplicates(text: str, source: str = "configuration.toml") -> list[str]:
    """What TOML refuses because it is written twice — a key set twice in one table, a ``[table]`` header written
    twice — each naming every occurrence as ``source:line``, and the fix. Empty when there is none."""
    headers: dict[str, list[int]] = {}
    keys: dict[tuple[int, str, str], list[int]] = {}
    section, array = 0, False
    for item in _walk(text):
        if isinstance(item, _Header):
            section, array = section + 1, item.array
            if not array:
                headers.setdefault(item.table, []).append(item.line)
        elif not item.commented:
            # a standard table is one table wherever its header stands; each [[array]] header starts a new one
            keys.setdefault((section if array else 0, item.table, item.key), []).append(item.line)
    problems = [
        f"{key} is set {_times(len(lines))} in {table_label(table)}: {_join([f'{source}:{n}' for n in lines])}. "
        "TOML allows a key once per table, and kata refuses the file: keep the line you mean and delete the "
        + ("others" if len(lines) > 2 else "other")
        for (_, table, key), lines in keys.items()
        if len(lines) > 1
    ]
    problems += [
        f"[{table}] is written {_times(len(lines))}: {_join([f'{source}:{n}' for n in lines])}. TOML allows a "
        "table once: move the keys under the later header to the first and delete the later header"
        for table, lines in headers.items()
        if len(lines) > 1
    ]
    return problems


def _refuse(source: str, text: str, error: object) -> ParseError:
    found = duplicates(text, source)
    if found:
        return ParseError(f"{source} is not valid TOML: " + "; ".join(found))
    return ParseError(f"{source} is not valid TOML: {error}")


def _load_with_tomlkit(text: str, source: str) -> dict[str, Any]:
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except (TOMLKitError, ValueError, TypeError, IndexError, KeyError, RecursionError) as e:
        raise _refuse(source, text, e) from None
    data = doc.unwrap()
    return dict(data)


def _load(text: str, source: str, *, use_tomlkit: bool = False) -> dict[str, Any]:
    if use_tomlkit or tomllib is None:
        return _load_with_tomlkit(text, source)
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, RecursionError) as e:
        raise _refuse(source, text, e) from None


@dataclass(frozen=True)
class KataConfig:
    hypervisor_name: str | None  # "qemu" from [hypervisor.qemu]
    guest_hook_path: str | None  # None: not set (commented out, as kata ≤ 3.23 ships it); "": hooks disabled (3.24+)
    kernel_params: str | None
    cold_plug_vfio: str | None  # None: not set (upstream default "no-port")
    hot_plug_vfio: str | None
    pcie_root_port: int | None
    default_memory: int | None  # MiB
    enable_annotations: tuple[str, ...]
    vfio_mode: str | None  # [runtime] vfio_mode: "vfio" | "guest-kernel"
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def hypervisor(self) -> dict[str, Any]:
        """The ``[hypervisor.<name>]`` table."""
        table = self.raw.get("hypervisor", {}).get(self.hypervisor_name or "", {})
        return table if isinstance(table, dict) else {}

    @property
    def kernel_param_map(self) -> dict[str, str | None]:
        """``kernel_params`` split like /proc/cmdline: ``{"virtcca_cvm_guest": "1", …}``."""
        from cai_tui.parsers.cpuinfo import parse_cmdline

        return parse_cmdline(self.kernel_params or "").params


def _typed(table: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = table.get(key)
    if value is None:
        return None
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ParseError(f"{where}: {key} must be an integer, not {value!r:.60}")
    if kind is str and not isinstance(value, str):
        raise ParseError(f"{where}: {key} must be a string, not {value!r:.60}")
    return value


def parse_kata_config(text: str, *, use_tomlkit: bool = False, source: str = "configuration.toml") -> KataConfig:
    """Parse a kata ``configuration.toml`` (tomllib on Python ≥ 3.11, tomlkit on 3.10 or when asked).

    ``source`` names the file in messages (a key written twice is named ``source:line`` at each occurrence).
    """
    raw = _load(text, source, use_tomlkit=use_tomlkit)
    hypervisors = raw.get("hypervisor", {})
    if not isinstance(hypervisors, dict):
        raise ParseError(f"{source}: 'hypervisor' must be a table ([hypervisor.qemu])")
    tables = {name: t for name, t in hypervisors.items() if isinstance(t, dict)}
    if len(tables) > 1:
        raise ParseError(f"{source}: more than one hypervisor table: {', '.join(sorted(tables))}")
    name = next(iter(tables), None)
    hv: Mapping[str, Any] = tables[name] if name is not None else {}
    where = f"[hypervisor.{name}]"
    annotations = hv.get("enable_annotations", [])
    if not isinstance(annotations, list) or not all(isinstance(a, str) for a in annotations):
        raise ParseError(f"{where}: enable_annotations must be a list of strings")
    runtime = raw.get("runtime", {})
    if not isinstance(runtime, dict):
        raise ParseError(f"{source}: 'runtime' must be a table")
    return KataConfig(
        hypervisor_name=name,
        guest_hook_path=_typed(hv, "guest_hook_path", str, where),
        kernel_params=_typed(hv, "kernel_params", str, where),
        cold_plug_vfio=_typed(hv, "cold_plug_vfio", str, where),
        hot_plug_vfio=_typed(hv, "hot_plug_vfio", str, where),
        pcie_root_port=_typed(hv, "pcie_root_port", int, where),
        default_memory=_typed(hv, "default_memory", int, where),
        enable_annotations=tuple(annotations),
        vfio_mode=_typed(runtime, "vfio_mode", str, "[runtime]"),
        raw=raw,
    )
