"""nvidia-smi output: ``-L``, ``--query-gpu … --format=csv``, ``-q``, the plain table, ``--version``, failure texts.

Shapes follow real output: tests/fixtures/captures/h100-vm-2026-11-22 (driver 580.159.04) and the public examples
named in tests/fixtures/parsers/SOURCES.md. nvidia-smi prints PCI bus IDs with an 8-digit domain and upper-case hex
(``00000000:2A:00.0``); :func:`cai_tui.recipe.types.parse_bdf` turns them into sysfs form (``0000:2a:00.0``).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cai_tui.parsers.errors import ParseError, at_line, nothing_found, numbered, quote
from cai_tui.recipe.types import parse_bdf

BUS_ID_RE = r"[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7]"

# --- failures ------------------------------------------------------------------------------------------------------
# (code, pattern, what it means). Order matters: the specific NVML mismatch before the generic NVML failure.
_FAILURES: tuple[tuple[str, re.Pattern[str], str], ...] = (
    (
        "driver_library_mismatch",
        re.compile(r"Failed to initialize NVML:\s*Driver/library version mismatch", re.I),
        "the loaded kernel module and the user-space NVML library are different driver versions (reboot or reload the module)",
    ),
    (
        "nvml_init_failed",
        re.compile(r"Failed to initialize NVML", re.I),
        "NVML could not start: driver not loaded, GPU not passed through, or no access to /dev/nvidia*",
    ),
    (
        "driver_unreachable",
        re.compile(r"NVIDIA-SMI has failed because it couldn.?t communicate with the NVIDIA driver", re.I),
        "the NVIDIA kernel module is not loaded (or was built for another kernel)",
    ),
    (
        "library_not_found",
        re.compile(r"couldn.?t find libnvidia-ml\.so", re.I),
        "the NVML library is missing: the driver's user-space part is not installed or not mounted in",
    ),
    (
        "device_handle_error",
        re.compile(r"Unable to determine the device handle for GPU", re.I),
        "the driver sees the GPU but cannot initialise it (passthrough/firmware/CC-mode problem; see dmesg NVRM lines)",
    ),
    (
        "no_cc_capable",
        re.compile(r"No CC capable devices found", re.I),
        "no GPU here supports confidential computing",
    ),
    (
        "no_devices",
        re.compile(r"^[ \t]*No devices were found", re.I | re.M),
        "the driver is loaded but no NVIDIA GPU is visible (not passed through, or bound to another driver)",
    ),
    (
        "not_found",
        re.compile(
            r"nvidia-smi['\"]?:\s*(?:command\s+)?not found"
            r"|nvidia-smi['\"]?:\s*executable file not found"
            r"|nvidia-smi['\"]?:\s*No such file or directory",
            re.I,
        ),
        "nvidia-smi is not installed here (guest image without the driver, or the OCI hook did not run)",
    ),
)
FAILURE_HINTS: dict[str, str] = {code: hint for code, _, hint in _FAILURES}


@dataclass(frozen=True)
class Failure:
    code: str  # one of FAILURE_HINTS
    line_no: int
    line: str

    @property
    def hint(self) -> str:
        return FAILURE_HINTS[self.code]


def find_failure(text: str) -> Failure | None:
    """The classic nvidia-smi failure in ``text`` (stdout and stderr together), with the line that shows it."""
    for code, pattern, _ in _FAILURES:
        m = pattern.search(text)
        if m:
            line_no = text.count("\n", 0, m.start()) + 1
            start = text.rfind("\n", 0, m.start()) + 1
            end = text.find("\n", m.start())
            return Failure(code, line_no, text[start : end if end >= 0 else len(text)].rstrip("\r"))
    return None


def detect_failure(text: str) -> str | None:
    """Code of the classic failure in ``text``, or None: ``driver_unreachable`` (couldn't communicate with the driver),
    ``driver_library_mismatch``, ``nvml_init_failed``, ``library_not_found``, ``device_handle_error``,
    ``no_cc_capable``, ``no_devices``, ``not_found`` (command not found). :data:`FAILURE_HINTS` explains each."""
    failure = find_failure(text)
    return failure.code if failure else None


def _unexpected(what: str, line_no: int, line: str, text: str) -> ParseError:
    failure = find_failure(text)
    if failure is not None:
        return ParseError(
            f"nvidia-smi failed ({failure.code}: {failure.hint}): line {failure.line_no}: {quote(failure.line)}",
            line_no=failure.line_no,
            line=failure.line,
        )
    return at_line(what, line_no, line)


def _nothing(what: str, text: str) -> ParseError:
    failure = find_failure(text)
    if failure is not None:
        return _unexpected(what, failure.line_no, failure.line, text)
    return nothing_found(what, text)


def _bdf(bus_id: str, line_no: int, line: str) -> str:
    try:
        return parse_bdf(bus_id)
    except ValueError:
        raise at_line(f"not a PCI bus ID: {bus_id!r}", line_no, line) from None


# --- -L ------------------------------------------------------------------------------------------------------------
_LIST_GPU = re.compile(r"^GPU (?P<index>[0-9]{1,6}): (?P<name>.*?) \(UUID: (?P<uuid>GPU-[^\s)]+)\)$")
_LIST_MIG = re.compile(r"^\s+MIG (?P<profile>\S+)\s+Device\s+(?P<index>[0-9]{1,6}): \(UUID: (?P<uuid>MIG-[^\s)]+)\)$")


@dataclass(frozen=True)
class MigListEntry:
    index: int
    profile: str  # e.g. "1g.10gb"
    uuid: str


@dataclass(frozen=True)
class GpuListEntry:
    index: int
    name: str
    uuid: str
    mig: tuple[MigListEntry, ...] = ()


def parse_list(text: str) -> list[GpuListEntry]:
    """``nvidia-smi -L``: ``GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-…)``, MIG devices indented under their GPU."""
    gpus: list[GpuListEntry] = []
    for n, line in numbered(text):
        line = line.rstrip()
        if not line:
            continue
        m = _LIST_GPU.match(line)
        if m:
            gpus.append(GpuListEntry(int(m["index"]), m["name"], m["uuid"]))
            continue
        m = _LIST_MIG.match(line)
        if m and gpus:
            last = gpus[-1]
            mig = MigListEntry(int(m["index"]), m["profile"], m["uuid"])
            gpus[-1] = GpuListEntry(last.index, last.name, last.uuid, (*last.mig, mig))
            continue
        raise _unexpected("expected 'GPU <n>: <name> (UUID: GPU-…)' from nvidia-smi -L", n, line, text)
    return gpus


# --- --query-gpu CSV -----------------------------------------------------------------------------------------------
_HEADER_CELL = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_.]*)(?:\s*\[(?P<unit>[^\]]+)\])?$")


def is_null(value: str) -> bool:
    """nvidia-smi's "no value" spellings: ``[N/A]``, ``[Not Supported]``, ``[Unknown Error]``, … and bare ``N/A``."""
    v = value.strip()
    return v in ("N/A", "") or (v.startswith("[") and v.endswith("]"))


def _split_csv(line: str) -> list[str]:
    # nvidia-smi separates with ", " and does not quote; quoted cells (RFC 4180) are accepted all the same.
    try:
        rows = list(csv.reader([line], skipinitialspace=True, strict=True))
    except csv.Error:
        return [c.strip() for c in line.split(",")]
    return [c.strip() for c in rows[0]] if rows else []


@dataclass(frozen=True)
class _Row:
    line_no: int
    line: str
    values: dict[str, str | None]


def _csv_rows(text: str, fields: Sequence[str], header: bool, strip_units: bool) -> list[_Row]:
    if not fields:
        raise ParseError("parse_query_csv: no fields given (pass the --query-gpu field list)")
    fields = list(fields)
    units: list[str | None] = [None] * len(fields)
    rows: list[_Row] = []
    seen_header = not header
    for n, line in numbered(text):
        if not line.strip():
            continue
        cells = _split_csv(line)
        if not seen_header:
            parsed = [_HEADER_CELL.match(c) for c in cells]
            if len(cells) != len(fields) or not all(parsed):
                raise _unexpected(
                    f"expected a CSV header with {len(fields)} columns ({', '.join(fields)})", n, line, text
                )
            units = [m["unit"] if m else None for m in parsed]
            seen_header = True
            continue
        if len(cells) != len(fields):
            raise _unexpected(
                f"expected {len(fields)} comma-separated values ({', '.join(fields)}), got {len(cells)}",
                n,
                line,
                text,
            )
        values: dict[str, str | None] = {}
        for name, cell, unit in zip(fields, cells, units, strict=True):
            if is_null(cell):
                values[name] = None
            elif strip_units and unit and cell.endswith(f" {unit}"):
                values[name] = cell[: -len(unit) - 1].rstrip()
            else:
                values[name] = cell
        rows.append(_Row(n, line, values))
    if header and not seen_header:
        raise _nothing("expected a CSV header line from --format=csv", text)
    return rows


def parse_query_csv(
    text: str, fields: Sequence[str], header: bool, *, strip_units: bool = False
) -> list[dict[str, str | None]]:
    """``nvidia-smi --query-gpu=<fields> --format=csv[,noheader][,nounits]``: one dict per GPU, keyed by ``fields``.

    ``header``: the first line is the header (``index, name, memory.total [MiB]``); its column count is checked, its
    names are not compared (nvidia-smi prints canonical names for aliases). Values are as printed (``81559 MiB`` with
    units), ``None`` for ``[N/A]``/``[Not Supported]``/``N/A``; ``strip_units`` drops the unit the header announced.
    Cells may be RFC-4180 quoted (nvidia-smi itself does not quote, so a name with a comma is a column-count error).
    """
    return [row.values for row in _csv_rows(text, fields, header, strip_units)]


INVENTORY_FIELDS: tuple[str, ...] = ("index", "name", "pci.bus_id", "driver_version", "memory.total")
INVENTORY_QUERY = f"--query-gpu={','.join(INVENTORY_FIELDS)} --format=csv,noheader,nounits"


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str
    pci_bus_id: str  # as printed: 00000000:00:06.0
    bdf: str  # sysfs form: 0000:00:06.0
    driver_version: str | None
    memory_total_mib: int | None


def parse_gpu_inventory(text: str) -> list[GpuInfo]:
    """Output of ``nvidia-smi`` + :data:`INVENTORY_QUERY` (``0, NVIDIA H200, 00000000:00:06.0, 580.159.04, 143771``)."""
    gpus: list[GpuInfo] = []
    for row in _csv_rows(text, INVENTORY_FIELDS, header=False, strip_units=False):
        v = row.values
        index, name, bus_id, memory = v["index"], v["name"], v["pci.bus_id"], v["memory.total"]
        if index is None or not re.fullmatch(r"[0-9]{1,6}", index):
            raise at_line("expected a GPU index as the first value", row.line_no, row.line)
        if not name:
            raise at_line("expected a GPU name as the second value", row.line_no, row.line)
        if bus_id is None:
            raise at_line("expected a PCI bus ID as the third value", row.line_no, row.line)
        memory_mib: int | None = None
        if memory is not None:
            if not re.fullmatch(r"[0-9]{1,12}", memory):
                raise at_line("expected memory.total in MiB without units (use nounits)", row.line_no, row.line)
            memory_mib = int(memory)
        gpus.append(
            GpuInfo(
                index=int(index),
                name=name,
                pci_bus_id=bus_id,
                bdf=_bdf(bus_id, row.line_no, row.line),
                driver_version=v["driver_version"],
                memory_total_mib=memory_mib,
            )
        )
    return gpus


# --- -q ------------------------------------------------------------------------------------------------------------
_Q_KV = re.compile(r"^(?P<key>\S(?:.*?\S)?)\s*:(?:\s+(?P<value>.*?))?\s*$")
_BANNER = re.compile(r"^=+[^=]*=+$")
_GPU_SECTION = re.compile(rf"^GPU (?P<bus>{BUS_ID_RE})$")


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    """Repeated keys (e.g. one "Process ID" per process) turn into a list of the values, in order."""
    if key not in target:
        target[key] = value
        return
    existing = target[key]
    if isinstance(existing, _Repeated):
        existing.append(value)
    else:
        target[key] = _Repeated([existing, value])


class _Repeated(list):  # type: ignore[type-arg]
    """A list made from a repeated key (so a real list value is never confused with it)."""


def parse_q(text: str) -> dict[str, Any]:
    """``nvidia-smi -q``: nested dicts by indentation, ``Key : Value`` lines as strings (as printed, ``N/A`` kept).

    Each ``GPU 00000000:00:06.0`` section is a top-level key holding that GPU's dict (see :func:`gpu_sections`).
    A key repeated in one section becomes a list of its values. Text without ``Driver Version`` and without any GPU
    section (a failure message, another command's output) raises :class:`ParseError`.
    """
    failure = find_failure(text)
    if failure is not None:
        raise _unexpected("", failure.line_no, failure.line, text)
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    for n, raw in numbered(text):
        line = raw.expandtabs(4).rstrip()
        stripped = line.strip()
        if not stripped or _BANNER.match(stripped):
            continue
        indent = len(line) - len(line.lstrip())
        while stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1]
        m = _Q_KV.match(stripped)
        if m:
            _put(parent, m["key"], m["value"] or "")
        else:
            section = _GPU_SECTION.match(stripped)
            if section and parent is root:
                _bdf(section["bus"], n, raw)
            child: dict[str, Any] = {}
            _put(parent, stripped, child)
            stack.append((indent, child))
    if "Driver Version" not in root and not gpu_sections(root):
        raise _nothing("expected nvidia-smi -q output ('Driver Version : …', 'GPU 00000000:…' sections)", text)
    return _plain(root)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _na(value: str | None) -> str | None:
    return None if value is None or value in ("N/A", "Not Found", "") else value


def driver_version(q: dict[str, Any]) -> str | None:
    """``Driver Version`` from :func:`parse_q`'s result."""
    return _na(_str(q.get("Driver Version")))


def cuda_version(q: dict[str, Any]) -> str | None:
    """``CUDA Version`` from :func:`parse_q`'s result; None for ``N/A``/``Not Found`` (vGPU hosts print that)."""
    return _na(_str(q.get("CUDA Version")))


def gpu_sections(q: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The per-GPU dicts of :func:`parse_q`'s result, keyed by the bus ID as printed (``00000000:00:06.0``)."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in q.items():
        m = _GPU_SECTION.match(key)
        if m and isinstance(value, dict):
            out[m["bus"]] = value
    return out


_CC_KEY = re.compile(r"Conf(?:idential)?\s*Compute|\bCC\b", re.I)


def _flatten(section: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in section.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{path}."))
        elif isinstance(value, str):
            out[path] = value
        elif isinstance(value, list):
            out[path] = ", ".join(v for v in value if isinstance(v, str))
    return out


def _mib(value: str | None) -> int | None:
    m = re.fullmatch(r"([0-9]{1,12})\s*MiB", value or "")
    return int(m.group(1)) if m else None


def _section_bdf(bus_id: str) -> str:
    try:
        return parse_bdf(bus_id)
    except ValueError:
        raise ParseError(f"not a PCI bus ID in a GPU section name: {bus_id!r}") from None


@dataclass(frozen=True)
class QGpu:
    bus_id: str  # as printed
    bdf: str  # sysfs form
    product_name: str | None
    uuid: str | None
    vbios_version: str | None
    virtualization_mode: str | None
    memory_total_mib: int | None
    cc: dict[str, str] = field(
        default_factory=dict
    )  # CC-related fields, flattened: "Conf Compute Protected Memory Usage.Total"


@dataclass(frozen=True)
class QSummary:
    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: list[QGpu]


def summarize_q(q: dict[str, Any]) -> QSummary:
    """The facts the checks use from :func:`parse_q`'s result: versions and, per GPU, name, bus ID, CC fields."""
    gpus: list[QGpu] = []
    for bus_id, section in gpu_sections(q).items():
        virt = section.get("GPU Virtualization Mode")
        fb = section.get("FB Memory Usage")
        flat = _flatten(section)
        gpus.append(
            QGpu(
                bus_id=bus_id,
                bdf=_section_bdf(bus_id),
                product_name=_str(section.get("Product Name")),
                uuid=_str(section.get("GPU UUID")),
                vbios_version=_str(section.get("VBIOS Version")),
                virtualization_mode=_str(virt.get("Virtualization Mode")) if isinstance(virt, dict) else None,
                memory_total_mib=_mib(_str(fb.get("Total"))) if isinstance(fb, dict) else None,
                cc={k: v for k, v in flat.items() if any(_CC_KEY.search(part) for part in k.split("."))},
            )
        )
    attached = _str(q.get("Attached GPUs"))
    return QSummary(
        driver_version=driver_version(q),
        cuda_version=cuda_version(q),
        attached_gpus=int(attached) if attached and re.fullmatch(r"[0-9]{1,6}", attached) else None,
        gpus=gpus,
    )


# --- plain table ---------------------------------------------------------------------------------------------------
_PLAIN_BANNER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>\S+)\s+Driver Version:\s*(?P<driver>\S+)(?:\s+CUDA Version:\s*(?P<cuda>\S+))?"
)
_PLAIN_GPU = re.compile(
    rf"^\|\s*(?P<index>[0-9]{{1,6}})\s+(?P<name>.+?)\s+(?P<persistence>On|Off|TCC|WDDM|N/A)\s*"
    rf"\|\s*(?P<bus>{BUS_ID_RE})\s+(?P<disp>\S+)\s*\|\s*(?P<ecc>.*?)\s*\|$"
)
_PLAIN_MEMORY = re.compile(r"\|\s*(?P<used>[0-9]{1,12})MiB\s*/\s*(?P<total>[0-9]{1,12})MiB\s*\|")


@dataclass(frozen=True)
class PlainGpu:
    index: int
    name: str  # as printed: long names are cut ("GeForce RTX 208...")
    persistence_mode: str
    bus_id: str
    bdf: str
    memory_used_mib: int | None
    memory_total_mib: int | None


@dataclass(frozen=True)
class PlainSummary:
    nvidia_smi_version: str
    driver_version: str
    cuda_version: str | None  # None when the banner has none (drivers before 410) or says N/A
    gpus: list[PlainGpu]


def parse_plain(text: str) -> PlainSummary:
    """Plain ``nvidia-smi``: versions from the banner row and one entry per GPU row (processes table ignored)."""
    banner: re.Match[str] | None = None
    gpus: list[PlainGpu] = []
    pending: tuple[re.Match[str], int, str] | None = None

    def flush(memory: re.Match[str] | None) -> None:
        nonlocal pending
        if pending is None:
            return
        m, n, line = pending
        gpus.append(
            PlainGpu(
                index=int(m["index"]),
                name=m["name"],
                persistence_mode=m["persistence"],
                bus_id=m["bus"],
                bdf=_bdf(m["bus"], n, line),
                memory_used_mib=int(memory["used"]) if memory else None,
                memory_total_mib=int(memory["total"]) if memory else None,
            )
        )
        pending = None

    for n, line in numbered(text):
        line = line.rstrip()
        if banner is None:
            banner = _PLAIN_BANNER.search(line)
            continue
        if pending is not None:
            flush(_PLAIN_MEMORY.search(line))
        m = _PLAIN_GPU.match(line)
        if m:
            pending = (m, n, line)
    flush(None)
    if banner is None:
        raise _nothing("expected the nvidia-smi table ('| NVIDIA-SMI … Driver Version: … |')", text)
    cuda = banner["cuda"]
    return PlainSummary(
        nvidia_smi_version=banner["smi"],
        driver_version=banner["driver"],
        cuda_version=None if cuda in (None, "N/A") else cuda,
        gpus=gpus,
    )


# --- --version -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionInfo:
    nvidia_smi: str | None
    nvml: str | None
    driver: str | None
    cuda: str | None


_VERSION_KEYS = {
    "nvidia-smi version": "nvidia_smi",
    "nvml version": "nvml",
    "driver version": "driver",
    "cuda version": "cuda",
}


def parse_version_info(text: str) -> VersionInfo:
    """``nvidia-smi --version``: ``NVIDIA-SMI version  : 580.159.04`` / ``NVML`` / ``DRIVER`` / ``CUDA Version``."""
    found: dict[str, str] = {}
    for n, line in numbered(text):
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        attr = _VERSION_KEYS.get(key.strip().lower())
        if not sep or attr is None or not value.strip():
            raise _unexpected(
                "expected '<NVIDIA-SMI|NVML|DRIVER|CUDA> version : <x>' from nvidia-smi --version", n, line, text
            )
        found[attr] = value.strip()
    if "driver" not in found and "nvidia_smi" not in found:
        raise _nothing("expected nvidia-smi --version output", text)
    return VersionInfo(found.get("nvidia_smi"), found.get("nvml"), found.get("driver"), found.get("cuda"))
