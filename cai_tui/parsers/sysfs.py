"""Pure helpers over values read from sysfs (the caller reads the files and links; nothing here touches the disk).

``/sys/bus/pci/devices/<BDF>/``: ``vendor`` (``0x10de``), ``device``, ``class`` (``0x030200``), ``driver`` (a link
ending in the driver name), ``iommu_group`` (a link ending in the group number; absent without an IOMMU),
``driver_override`` (``(null)`` when unset), ``numa_node`` (``-1`` when unknown).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from cai_tui.parsers.errors import ParseError, quote
from cai_tui.recipe.types import parse_bdf

NVIDIA_VENDOR_ID = 0x10DE
T = TypeVar("T")

# PCI class names as lspci prints them (pci.ids "C" section), keyed by base class << 8 | subclass.
_CLASS_NAMES: dict[int, str] = {
    0x0000: "Non-VGA unclassified device",
    0x0001: "VGA compatible unclassified device",
    0x0100: "SCSI storage controller",
    0x0101: "IDE interface",
    0x0104: "RAID bus controller",
    0x0106: "SATA controller",
    0x0107: "Serial Attached SCSI controller",
    0x0108: "Non-Volatile memory controller",
    0x0180: "Mass storage controller",
    0x0200: "Ethernet controller",
    0x0207: "Infiniband controller",
    0x0280: "Network controller",
    0x0300: "VGA compatible controller",
    0x0301: "XGA compatible controller",
    0x0302: "3D controller",
    0x0380: "Display controller",
    0x0401: "Multimedia audio controller",
    0x0403: "Audio device",
    0x0500: "RAM memory",
    0x0580: "Memory controller",
    0x0600: "Host bridge",
    0x0601: "ISA bridge",
    0x0604: "PCI bridge",
    0x0680: "Bridge",
    0x0700: "Serial controller",
    0x0780: "Communication controller",
    0x0800: "PIC",
    0x0806: "IOMMU",
    0x0880: "System peripheral",
    0x0C03: "USB controller",
    0x0C05: "SMBus",
    0x1080: "Encryption controller",
    0x1180: "Signal processing controller",
    0x1200: "Processing accelerators",
    0xFF00: "Unassigned class",
}


def _clean(text: str) -> str:
    return text.strip().rstrip("\x00").strip()


def parse_hex_id(text: str) -> int:
    """A sysfs id file: ``"0x10de\\n"`` → 0x10de (``0x`` optional)."""
    value = _clean(text)
    if not re.fullmatch(r"(?:0[xX])?[0-9a-fA-F]{1,8}", value):
        raise ParseError(f"expected a hexadecimal id like 0x10de: {quote(text)}", line_no=1, line=text)
    return int(value, 16)


def parse_int(text: str) -> int:
    """A sysfs decimal file (``numa_node``, ``sriov_numvfs``): ``"-1\\n"`` → -1."""
    value = _clean(text)
    if not re.fullmatch(r"-?\d{1,12}", value):
        raise ParseError(f"expected a decimal number: {quote(text)}", line_no=1, line=text)
    return int(value)


def _link_tail(link: str, what: str) -> str | None:
    value = _clean(link).rstrip("/")
    if not value:
        return None
    tail = value.rsplit("/", 1)[-1]
    if not tail or any(c.isspace() for c in tail) or tail in (".", ".."):
        raise ParseError(f"expected a {what} link ending in a name: {quote(link)}", line_no=1, line=link)
    return tail


def driver_from_link(link: str) -> str | None:
    """``"../../../bus/pci/drivers/nvidia"`` → ``"nvidia"``; empty (no driver bound, readlink failed) → None."""
    return _link_tail(link, "driver")


def group_from_link(link: str) -> int | None:
    """``"../../../kernel/iommu_groups/81"`` → 81; empty (no IOMMU group: IOMMU off) → None."""
    tail = _link_tail(link, "iommu_group")
    if tail is None:
        return None
    if not re.fullmatch(r"[0-9]{1,9}", tail):
        raise ParseError(f"expected an iommu_group link ending in a number: {quote(link)}", line_no=1, line=link)
    return int(tail)


def parse_driver_override(text: str) -> str | None:
    """``driver_override``: ``"(null)\\n"`` or empty → None, else the driver name (``vfio-pci``)."""
    value = _clean(text)
    return None if value in ("", "(null)") else value


def parse_numa_node(text: str) -> int | None:
    """``numa_node``: -1 (unknown / single node) → None."""
    value = parse_int(text)
    return None if value < 0 else value


def class_name(class16: int) -> str:
    """Name for a 16-bit class (base << 8 | subclass), as lspci prints it: 0x0302 → ``"3D controller"``."""
    if class16 in _CLASS_NAMES:
        return _CLASS_NAMES[class16]
    return f"Class {class16 & 0xFFFF:04x}"


def parse_class(value: int | str) -> str:
    """A sysfs ``class`` value (24-bit: base, subclass, prog-if) → its name: ``0x030200`` → ``"3D controller"``."""
    code = value if isinstance(value, int) else parse_hex_id(value)
    if not 0 <= code <= 0xFFFFFF:
        raise ParseError(f"a PCI class code has 24 bits: {code:#x}")
    return class_name(code >> 8)


@dataclass(frozen=True)
class PciSysfsDevice:
    bdf: str
    vendor_id: int
    device_id: int
    class_code: int  # 24-bit, as in sysfs
    driver: str | None
    iommu_group: int | None
    driver_override: str | None = None
    numa_node: int | None = None

    @property
    def class_name(self) -> str:
        return class_name(self.class_code >> 8)

    @property
    def is_nvidia(self) -> bool:
        return self.vendor_id == NVIDIA_VENDOR_ID

    @property
    def is_gpu(self) -> bool:
        """Display class (VGA 0x0300, 3D 0x0302, other 0x0380) — what an NVIDIA GPU reports."""
        return self.class_code >> 16 == 0x03

    @property
    def is_bridge(self) -> bool:
        return self.class_code >> 16 == 0x06


def device_from_values(bdf: str, values: Mapping[str, str]) -> PciSysfsDevice:
    """Build a device from the raw texts read under ``/sys/bus/pci/devices/<bdf>/``.

    ``values``: ``vendor``, ``device``, ``class`` (required); ``driver`` and ``iommu_group`` (readlink results,
    empty or absent when there is no link); ``driver_override``, ``numa_node`` (optional).
    """
    try:
        norm = parse_bdf(bdf)
    except ValueError:
        raise ParseError(f"not a PCI address (DDDD:BB:SS.F): {quote(bdf)}", line_no=1, line=bdf) from None
    for key in ("vendor", "device", "class"):
        if key not in values:
            raise ParseError(f"{norm}: sysfs value {key!r} is missing")

    def named(key: str, parse: Callable[[str], T]) -> T:
        try:
            return parse(values[key])
        except ParseError as e:
            raise ParseError(f"{norm}/{key}: {e.message}", line_no=e.line_no, line=e.line) from None

    override = values.get("driver_override")
    numa = values.get("numa_node")
    return PciSysfsDevice(
        bdf=norm,
        vendor_id=named("vendor", parse_hex_id),
        device_id=named("device", parse_hex_id),
        class_code=named("class", parse_hex_id),
        driver=named("driver", driver_from_link) if "driver" in values else None,
        iommu_group=named("iommu_group", group_from_link) if "iommu_group" in values else None,
        driver_override=parse_driver_override(override) if override is not None else None,
        numa_node=named("numa_node", parse_numa_node) if numa is not None else None,
    )


def group_viable(members: Iterable[PciSysfsDevice]) -> bool:
    """An IOMMU group can be passed through only when every member is bound to vfio-pci or is a bridge."""
    devices = list(members)
    return bool(devices) and all(d.driver == "vfio-pci" or d.is_bridge for d in devices)
