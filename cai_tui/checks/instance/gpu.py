"""gpu.present and gpu.driver: an NVIDIA GPU and a working driver."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ...parsers.errors import ParseError
from ...parsers.nvidia_smi import GpuInfo, parse_plain
from ...parsers.proc_nvidia import NvrmVersion
from ...parsers.proc_nvidia import parse_version as parse_nvrm_version
from ..base import CheckContext, Evidence, Result
from ..common import ev, make
from ..registry import check
from ._common import (
    CMD_SHARE,
    FIX_GPU_MISSING,
    GPU_TIMEOUT,
    NVML_FIX,
    ROLE,
    STAGE_INSTANCE,
    _cmd,
    _last_line,
    _line_with,
    _nvml_fix,
    inventory,
    read_fact,
    smi,
)
from .commands import PROC_VERSION, PROC_VERSION_CMD, SMI, SMI_INVENTORY
from .sysfs import _sysfs_line, sysfs_nvidia_gpus

if TYPE_CHECKING:
    from ...targets.base import Target

# --- gpu.present -------------------------------------------------------------------------------------------------------


def _gpu_data(g: GpuInfo) -> dict[str, Any]:
    return {
        "index": g.index,
        "name": g.name,
        "bdf": g.bdf,
        "pci_bus_id": g.pci_bus_id,
        "driver_version": g.driver_version,
        "memory_total_mib": g.memory_total_mib,
    }


def _inventory_lines(stdout: str) -> list[str]:
    return [ln.strip() for ln in stdout.splitlines() if ln.strip()]


@check(
    "gpu.present",
    "An NVIDIA GPU is visible (nvidia-smi, else sysfs)",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def gpu_present(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    budget = GPU_TIMEOUT * CMD_SHARE
    gpus, answer, why = await inventory(target, budget)
    source = _cmd(SMI_INVENTORY)
    if gpus is not None:
        lines = _inventory_lines(answer.res.stdout)
        evidence = [ev(ctx, line, source, target.name) for line in lines]
        listed = "; ".join(f"{g.name} at {g.bdf}" for g in gpus)
        return make(
            ctx, "pass", f"{len(gpus)} GPU(s): {listed}", evidence, gpus=[_gpu_data(g) for g in gpus], via="nvidia-smi"
        )
    evidence = [ev(ctx, why or answer.why, source, target.name)]
    devices, sys_source = await sysfs_nvidia_gpus(target, budget)
    faq, fix_text = _nvml_fix(answer.failure)
    if devices:
        evidence += [ev(ctx, _sysfs_line(d), sys_source, target.name) for d in devices]
        listed = "; ".join(f"NVIDIA device 0x{d.device_id:04x} at {d.bdf}" for d in devices)
        return make(
            ctx,
            "warn",
            f"{len(devices)} NVIDIA GPU(s) on the PCI bus ({listed}) but nvidia-smi does not list them "
            f"({why or answer.why}): the NVIDIA driver/tools are missing or broken",
            evidence,
            ("nvml-init-failed", fix_text),
            gpus=[
                {"index": None, "name": f"NVIDIA 0x{d.device_id:04x}", "bdf": d.bdf, "driver": d.driver}
                for d in devices
            ],
            via="sysfs",
        )
    if devices is not None:
        evidence.append(
            ev(ctx, "no NVIDIA display-class device (vendor 0x10de, class 0x03xxxx)", sys_source, target.name)
        )
        return make(
            ctx,
            "fail",
            f"no NVIDIA GPU: nvidia-smi lists none ({why or answer.why}) and sysfs shows none",
            evidence,
            FIX_GPU_MISSING,
            gpus=[],
        )
    evidence.append(ev(ctx, sys_source, "sysfs", target.name))
    return make(
        ctx,
        "fail",
        f"no GPU listed: nvidia-smi {why or answer.why}; sysfs could not be read either",
        evidence,
        (faq, fix_text),
        gpus=[],
    )


# --- gpu.driver --------------------------------------------------------------------------------------------------------


async def _nvrm(target: Target, timeout: float) -> tuple[NvrmVersion | None, str | None, str]:
    """(parsed /proc/driver/nvidia/version, its NVRM line, source)."""
    text, source = await read_fact(target, PROC_VERSION, PROC_VERSION_CMD, timeout)
    if text is None:
        return None, None, source
    try:
        return parse_nvrm_version(text), _line_with(text, "NVRM version"), source
    except ParseError:
        return None, _last_line(text), source


@check(
    "gpu.driver",
    "The NVIDIA driver is loaded and NVML works (nvidia-smi, /proc/driver/nvidia/version)",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def gpu_driver(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    budget = GPU_TIMEOUT * CMD_SHARE
    answer, (nvrm, nvrm_line, nvrm_source) = await asyncio.gather(smi(target, SMI, budget), _nvrm(target, budget))
    evidence: list[Evidence] = []
    if nvrm_line:
        evidence.append(ev(ctx, nvrm_line, nvrm_source, target.name))
    module = f"kernel module {nvrm.version}" if nvrm else None
    data: dict[str, Any] = {"kernel_module": nvrm.version if nvrm else None}
    if answer.failure is None and answer.res.ok:
        try:
            plain = parse_plain(answer.res.stdout)
        except ParseError as e:
            evidence.insert(0, ev(ctx, str(e), _cmd(SMI), target.name))
            return make(ctx, "unknown", f"nvidia-smi printed something unexpected: {e}", evidence, **data)
        banner = _line_with(answer.res.stdout, "Driver Version") or plain.driver_version
        evidence.insert(0, ev(ctx, banner.strip("| "), _cmd(SMI), target.name))
        data.update(driver_version=plain.driver_version, cuda_version=plain.cuda_version)
        if nvrm is not None and nvrm.version != plain.driver_version:
            return make(
                ctx,
                "fail",
                f"nvidia-smi reports driver {plain.driver_version} but the loaded {module}",
                evidence,
                ("nvml-init-failed", NVML_FIX["driver_library_mismatch"]),
                **data,
            )
        cuda = f", CUDA {plain.cuda_version}" if plain.cuda_version else ""
        kind = ", open kernel module" if nvrm is not None and nvrm.open_kernel_module else ""
        return make(ctx, "pass", f"NVIDIA driver {plain.driver_version}{cuda}{kind}", evidence, **data)
    evidence.insert(0, ev(ctx, answer.why, _cmd(SMI), target.name))
    library = _line_with(answer.text, "NVML library version")
    if library:
        evidence.insert(1, ev(ctx, library, _cmd(SMI), target.name))
    faq, fix_text = _nvml_fix(answer.failure)
    code = answer.failure.code if answer.failure else None
    if code in ("not_found", "no_devices") and nvrm is not None:
        what = "nvidia-smi is missing" if code == "not_found" else "it sees no GPU"
        return make(
            ctx,
            "warn",
            f"NVIDIA {module} is loaded but {what} ({answer.why})",
            evidence,
            (faq, fix_text),
            driver_version=nvrm.version,
            **data,
        )
    if code == "not_found":
        return make(
            ctx,
            "fail",
            f"no NVIDIA driver: nvidia-smi is missing ({answer.why}) and {PROC_VERSION} is absent",
            evidence,
            (faq, fix_text),
            **data,
        )
    loaded = f" ({module} loaded)" if module else ""
    return make(ctx, "fail", f"nvidia-smi fails: {answer.why}{loaded}", evidence, (faq, fix_text), **data)
