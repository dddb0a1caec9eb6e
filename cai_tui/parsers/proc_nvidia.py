"""``/proc/driver/nvidia/version`` and ``/proc/driver/nvidia/gpus/<bdf>/information``.

version, proprietary and open kernel modules::

    NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  Sat Aug 19 01:15:15 UTC 2023
    NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release Build  (nixbld@)
    GCC version:  gcc version 15.3.0 (GCC)

information (tab-aligned ``Key: value``)::

    Model: 		 NVIDIA H100 80GB HBM3
    Bus Location: 	 0000:00:06.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cai_tui.parsers.errors import ParseError, at_line, nothing_found, numbered
from cai_tui.recipe.types import parse_bdf

_NVRM = re.compile(
    r"^NVRM version:\s+NVIDIA UNIX\s+(?:(?P<open>Open)\s+)?(?:(?P<arch1>[\w-]+)\s+)?Kernel Module"
    r"(?:\s+for\s+(?P<arch2>[\w-]+))?\s+(?P<version>\d+\.\d+(?:\.\d+)*)(?:\s+(?P<rest>.*?))?\s*$"
)
_GCC = re.compile(r"^GCC version:\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class NvrmVersion:
    version: str  # "580.159.04"
    open_kernel_module: bool
    arch: str | None  # "x86_64", "aarch64"
    build: str | None  # the rest of the NVRM line: a date, or "Release Build  (builder@host)  …"
    gcc_version: str | None


def parse_version(text: str) -> NvrmVersion:
    """``/proc/driver/nvidia/version``: the kernel module's version (the driver actually loaded)."""
    nvrm: re.Match[str] | None = None
    gcc: str | None = None
    for n, line in numbered(text):
        stripped = line.strip()
        if not stripped:
            continue
        m = _NVRM.match(stripped)
        if m and nvrm is None:
            nvrm = m
            continue
        g = _GCC.match(stripped)
        if g:
            gcc = g["value"] or None
            continue
        raise at_line("expected 'NVRM version: NVIDIA UNIX … Kernel Module  <version>' or 'GCC version:'", n, line)
    if nvrm is None:
        raise nothing_found("expected 'NVRM version: NVIDIA UNIX … Kernel Module  <version>'", text)
    return NvrmVersion(
        version=nvrm["version"],
        open_kernel_module=bool(nvrm["open"]),
        arch=nvrm["arch2"] or nvrm["arch1"],
        build=nvrm["rest"] or None,
        gcc_version=gcc,
    )


_INFO = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9 ._/()-]*?):\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class GpuInformation:
    model: str | None
    uuid: str | None
    bus_location: str | None  # as printed: 0000:00:06.0
    bdf: str | None  # normalised
    video_bios: str | None
    bus_type: str | None
    device_minor: int | None
    irq: int | None
    gpu_firmware: str | None  # GSP firmware version (newer drivers)
    excluded: bool | None  # "GPU Excluded: No"
    fields: dict[str, str] = field(default_factory=dict)


def parse_gpu_information(text: str) -> GpuInformation:
    """``/proc/driver/nvidia/gpus/<bdf>/information`` for one GPU."""
    fields: dict[str, str] = {}
    location_line: tuple[int, str] | None = None
    for n, line in numbered(text):
        if not line.strip():
            continue
        m = _INFO.match(line.strip())
        if not m:
            raise at_line("expected 'Key: value' lines from /proc/driver/nvidia/gpus/*/information", n, line)
        fields[m["key"]] = m["value"]
        if m["key"] == "Bus Location":
            location_line = (n, line)
    if "Model" not in fields and "Bus Location" not in fields:
        raise nothing_found("expected 'Model:' and 'Bus Location:' from /proc/driver/nvidia/gpus/*/information", text)

    def number(key: str) -> int | None:
        value = fields.get(key, "")
        return int(value) if re.fullmatch(r"[0-9]{1,9}", value) else None

    location = fields.get("Bus Location") or None
    bdf: str | None = None
    if location is not None and location_line is not None:
        try:
            bdf = parse_bdf(location)
        except ValueError:
            raise at_line("Bus Location is not a PCI address", *location_line) from None
    excluded = fields.get("GPU Excluded")
    return GpuInformation(
        model=fields.get("Model") or None,
        uuid=fields.get("GPU UUID") or None,
        bus_location=location,
        bdf=bdf,
        video_bios=fields.get("Video BIOS") or None,
        bus_type=fields.get("Bus Type") or None,
        device_minor=number("Device Minor"),
        irq=number("IRQ"),
        gpu_firmware=fields.get("GPU Firmware") or None,
        excluded=None if excluded is None else excluded.strip().lower() == "yes",
        fields=fields,
    )


__all__ = ["GpuInformation", "NvrmVersion", "ParseError", "parse_gpu_information", "parse_version"]
