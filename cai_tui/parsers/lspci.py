"""``lspci -nn -D``: one line per PCI function.

``DDDD:BB:SS.F <class name> [cccc]: <vendor> <device> [vvvv:dddd] (rev xx)``, e.g.
``0000:00:06.0 3D controller [0302]: NVIDIA Corporation GH100 [H100 SXM5 80GB] [10de:2330] (rev a1)``.
``(rev xx)`` is missing when the revision is 0; IDs missing from pci.ids print as ``Device`` (an unknown vendor prints
only ``Device``). Without ``-D`` the domain is missing; the BDF is normalised to ``0000:…`` either way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from cai_tui.parsers.errors import ParseError, at_line, numbered
from cai_tui.parsers.sysfs import NVIDIA_VENDOR_ID
from cai_tui.recipe.types import parse_bdf

_LINE = re.compile(
    r"^(?P<bdf>(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+"
    r"(?P<class_name>.+?) \[(?P<class_id>[0-9a-fA-F]{4})\]: "
    r"(?P<names>.*?) ?\[(?P<vendor_id>[0-9a-fA-F]{4}):(?P<device_id>[0-9a-fA-F]{4})\]"
    r"(?: \(rev (?P<rev>[0-9a-fA-F]{2})\))?"
    r"(?: \(prog-if [0-9a-fA-F]{2}(?: \[[^\]]*\])?\))?\s*$"
)

# Vendor names as pci.ids spells them, for splitting "<vendor> <device>" (lspci prints them with one space between).
KNOWN_VENDORS: dict[int, str] = {
    0x10DE: "NVIDIA Corporation",
    0x8086: "Intel Corporation",
    0x1022: "Advanced Micro Devices, Inc. [AMD]",
    0x1002: "Advanced Micro Devices, Inc. [AMD/ATI]",
    0x1AF4: "Red Hat, Inc.",
    0x1B36: "Red Hat, Inc.",
    0x15B3: "Mellanox Technologies",
    0x19E5: "Huawei Technologies Co., Ltd.",
    0x1A03: "ASPEED Technology, Inc.",
    0x1000: "Broadcom / LSI",
    0x14E4: "Broadcom Inc. and subsidiaries",
    0x1D0F: "Amazon.com, Inc.",
    0x1DED: "Alibaba (China) Co., Ltd.",
    0x1414: "Microsoft Corporation",
    0x144D: "Samsung Electronics Co Ltd",
}
_VENDOR_SUFFIX = re.compile(
    r"^(?P<vendor>.+?(?:Corporation|Corp\.|Inc\.|Ltd\.|Limited|Co\.|GmbH|AG|LLC|\[AMD(?:/ATI)?\]))(?: (?P<device>.+))?$"
)


@dataclass(frozen=True)
class PciDevice:
    bdf: str  # sysfs form DDDD:BB:SS.F, lower-case
    class_name: str
    class_id: int  # 16-bit: 0x0302
    vendor_name: str | None  # None when lspci prints only "Device" (vendor not in pci.ids)
    vendor_id: int
    device_name: str  # "Device" when the ID is not in pci.ids
    device_id: int
    rev: int | None  # None when lspci prints no "(rev xx)"
    description: str = ""  # "<vendor> <device>" exactly as printed

    @property
    def is_nvidia(self) -> bool:
        return self.vendor_id == NVIDIA_VENDOR_ID

    @property
    def is_gpu(self) -> bool:
        """Display class: VGA compatible (0300), 3D (0302), other display (0380)."""
        return self.class_id >> 8 == 0x03

    @property
    def ids(self) -> str:
        """``10de:2330`` as used by ``lspci -d`` and vfio-pci ``ids=``."""
        return f"{self.vendor_id:04x}:{self.device_id:04x}"


def _split_names(names: str, vendor_id: int) -> tuple[str | None, str]:
    names = names.strip()
    if names in ("", "Device"):
        return None, "Device"
    known = KNOWN_VENDORS.get(vendor_id)
    if known and names.startswith(known):
        return known, names[len(known) :].strip() or "Device"
    if names.endswith(" Device"):
        return names[: -len(" Device")], "Device"
    m = _VENDOR_SUFFIX.match(names)
    if m:
        return m["vendor"], m["device"] or "Device"
    return names, ""


def parse_lspci_nn_D(text: str) -> list[PciDevice]:
    """Every line of ``lspci -nn -D`` (``-nn`` is required: the ``[cccc]`` and ``[vvvv:dddd]`` IDs are parsed)."""
    devices: list[PciDevice] = []
    for n, line in numbered(text):
        if not line.strip():
            continue
        m = _LINE.match(line.rstrip())
        if not m:
            raise at_line("expected an 'lspci -nn -D' line ('DDDD:BB:SS.F <class> [cccc]: … [vvvv:dddd]')", n, line)
        try:
            bdf = parse_bdf(m["bdf"])
        except ValueError:
            raise at_line("not a PCI address", n, line) from None
        vendor_id = int(m["vendor_id"], 16)
        vendor_name, device_name = _split_names(m["names"], vendor_id)
        devices.append(
            PciDevice(
                bdf=bdf,
                class_name=m["class_name"],
                class_id=int(m["class_id"], 16),
                vendor_name=vendor_name,
                vendor_id=vendor_id,
                device_name=device_name,
                device_id=int(m["device_id"], 16),
                rev=int(m["rev"], 16) if m["rev"] else None,
                description=m["names"].strip(),
            )
        )
    return devices


def nvidia_devices(devices: Iterable[PciDevice]) -> list[PciDevice]:
    """The NVIDIA functions (vendor 10de): GPUs, and on HGX boards NVSwitch bridges and audio functions."""
    return [d for d in devices if d.is_nvidia]


def nvidia_gpus(devices: Iterable[PciDevice]) -> list[PciDevice]:
    """NVIDIA functions of display class (0300/0302/0380): the GPUs to pass through."""
    return [d for d in devices if d.is_nvidia and d.is_gpu]


__all__ = ["KNOWN_VENDORS", "ParseError", "PciDevice", "nvidia_devices", "nvidia_gpus", "parse_lspci_nn_D"]
