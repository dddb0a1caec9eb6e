"""The GPU in the host's sysfs: found by answers.gpu.bdf or a scan, read with its driver and IOMMU group."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...parsers.errors import ParseError
from ...targets.base import Target
from ..base import CheckContext, Result
from ..common import ev, make
from ._common import _listdir, _listing, _read_text, _readlink, kata_answers

if TYPE_CHECKING:
    from ...parsers.sysfs import PciSysfsDevice

PCI_DEVICES = "/sys/bus/pci/devices"


@dataclass
class _Pci:
    dev: PciSysfsDevice
    driver_link: str | None
    group_link: str | None

    def line(self) -> str:
        d = self.dev
        driver = d.driver or "(no driver)"
        group = "" if d.iommu_group is None else f", iommu_group {d.iommu_group}"
        return f"{d.bdf} [{d.vendor_id:04x}:{d.device_id:04x}] {d.class_name} → {driver}{group}"


async def _read_pci(t: Target, bdf: str) -> _Pci:
    """One device's sysfs values; FileNotFoundError when it is absent, ParseError when a value is not sysfs-shaped."""
    from ...parsers.sysfs import device_from_values

    base = f"{PCI_DEVICES}/{bdf}"
    values: dict[str, str] = {}
    for key in ("vendor", "device", "class"):
        text, why = await _read_text(t, f"{base}/{key}", 4096)
        if text is None:
            raise FileNotFoundError(2, f"{base}/{key}: {why}", f"{base}/{key}")
        values[key] = text
    override, _ = await _read_text(t, f"{base}/driver_override", 4096)
    if override is not None:
        values["driver_override"] = override
    driver_link, group_link = await asyncio.gather(_readlink(t, f"{base}/driver"), _readlink(t, f"{base}/iommu_group"))
    if driver_link is not None:
        values["driver"] = driver_link
    if group_link is not None:
        values["iommu_group"] = group_link
    return _Pci(device_from_values(bdf, values), driver_link, group_link)


@dataclass
class _Gpus:
    gpus: list[_Pci]
    how: str  # "answers.gpu.bdf" or "sysfs scan"
    problem: Result | None = None


async def _find_gpus(ctx: CheckContext, t: Target) -> _Gpus:
    """The recipe's GPU (answers.gpu.bdf) or every NVIDIA display-class device in sysfs."""
    from ...parsers.sysfs import NVIDIA_VENDOR_ID, parse_hex_id

    answers, origin = kata_answers(ctx)
    bdf = answers.gpu.bdf
    if bdf:
        try:
            return _Gpus([await _read_pci(t, bdf)], "answers.gpu.bdf")
        except FileNotFoundError as e:
            return _Gpus(
                [],
                "answers.gpu.bdf",
                make(
                    ctx,
                    "fail",
                    f"no PCI device {bdf} on the host ({PCI_DEVICES}/{bdf} is absent)",
                    [ev(ctx, str(e.strerror or e), f"{PCI_DEVICES}/{bdf}", t.name), ev(ctx, bdf, "answers.gpu.bdf")],
                    (
                        "vfio-probe-failed",
                        f"answers.gpu.bdf names {bdf}, which the host does not have (a wrong address, or the device "
                        "dropped off the bus after a failed probe or reset: `dmesg | grep -iE 'vfio|nvidia'`). Find the "
                        "GPU with `lspci -nn -D | grep -i nvidia` and set gpu.bdf, or leave it empty to detect it.",
                    ),
                ),
            )
        except ParseError as e:
            return _Gpus([], "answers.gpu.bdf", make(ctx, "unknown", f"{bdf}: unreadable sysfs values: {e}"))
    entries = await _listdir(t, PCI_DEVICES)
    if entries is None:
        return _Gpus(
            [],
            "sysfs scan",
            make(
                ctx,
                "unknown",
                f"{PCI_DEVICES} is absent on {t.name}: cannot look for the GPU",
                [ev(ctx, "(absent)", f"ls {PCI_DEVICES}", t.name)],
            ),
        )

    async def vendor(name: str) -> int | None:
        text, _ = await _read_text(t, f"{PCI_DEVICES}/{name}/vendor", 64)
        try:
            return parse_hex_id(text) if text is not None else None
        except ParseError:
            return None

    vendors = await asyncio.gather(*(vendor(n) for n in entries))
    gpus: list[_Pci] = []
    for name, vid in zip(entries, vendors, strict=True):
        if vid != NVIDIA_VENDOR_ID:
            continue
        try:
            pci = await _read_pci(t, name)
        except (FileNotFoundError, ParseError):
            continue
        if pci.dev.is_gpu:
            gpus.append(pci)
    if not gpus:
        return _Gpus(
            [],
            "sysfs scan",
            make(
                ctx,
                "skip",
                f"no NVIDIA GPU (vendor 0x10de, display class) among the {len(entries)} devices in {PCI_DEVICES} "
                f"({origin} name no gpu.bdf); gpu.present reports it",
                [ev(ctx, _listing(entries), f"ls {PCI_DEVICES}", t.name)],
            ),
        )
    return _Gpus(gpus, "sysfs scan")


def _bind_steps(pci: _Pci) -> str:
    bdf = pci.dev.bdf
    steps = ["modprobe vfio-pci", f"echo vfio-pci > {PCI_DEVICES}/{bdf}/driver_override"]
    if pci.dev.driver and pci.dev.driver != "vfio-pci":
        steps.append(f"echo {bdf} > {PCI_DEVICES}/{bdf}/driver/unbind")
    steps.append(f"echo {bdf} > /sys/bus/pci/drivers_probe")
    return "; ".join(steps)
