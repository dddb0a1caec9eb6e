"""kernel.config: CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1 and CONFIG_VFIO_PCI, from whichever source is readable."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any

from ...parsers.errors import ParseError
from ...targets.base import Target
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _host, _kernel_release, _listdir, _read, _read_text

# --------------------------------------------------------------------------------------------- kernel.config


@dataclass
class _ConfigSources:
    config_text: str | None = None
    config_source: str = "kernel config"
    modules_builtin: str | None = None
    module_files: list[str] | None = None
    runtime: list[str] | None = None
    loaded_modules: str | None = None
    tried: list[str] = field(default_factory=list)


async def _config_text(t: Target, release: str | None, found: _ConfigSources) -> None:
    """The first readable kernel config of the documented order."""
    data, why = await _read(t, "/proc/config.gz", 16 * 1024 * 1024)
    if data is not None:
        try:
            found.config_text = gzip.decompress(data).decode("utf-8", "replace")
            found.config_source = "/proc/config.gz"
            return
        except (OSError, EOFError, zlib.error) as e:
            why = f"not gzip data ({e})"
    found.tried.append(f"/proc/config.gz: {why}")
    if release is None:
        found.tried.append("/boot/config-<release>, /lib/modules/<release>/…: kernel release unknown")
        return
    for path in (f"/boot/config-{release}", f"/lib/modules/{release}/config", f"/lib/modules/{release}/build/.config"):
        text, why = await _read_text(t, path)
        if text is not None:
            found.config_text, found.config_source = text, path
            return
        found.tried.append(f"{path}: {why}")


async def _module_files(t: Target, base: str) -> list[str] | None:
    top = await _listdir(t, base)
    if top is None:
        return None
    files: list[str] = []
    for name in top:
        if ".ko" in name:
            files.append(f"{base}/{name}")
            continue
        sub = await _listdir(t, f"{base}/{name}")
        files.extend(f"{base}/{name}/{s}" for s in (sub or []) if ".ko" in s)
    return files


@check(
    "kernel.config",
    "Kernel has CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1 and CONFIG_VFIO_PCI",
    stage="host-prerequisites",
    flows=FLOW,
    runs_on="host",
)
async def kernel_config(ctx: CheckContext) -> Result:
    from ...parsers.kernel_config import RUNTIME_PATHS, vfio_state

    t = _host(ctx)
    release, rel_source = await _kernel_release(ctx, t)
    src = _ConfigSources()
    await _config_text(t, release, src)

    def state() -> dict[str, Any]:
        return vfio_state(
            src.config_text,
            src.modules_builtin,
            src.module_files,
            src.runtime,
            config_source=src.config_source,
            loaded_modules=src.loaded_modules,
        )

    states = state()
    if any(s.state == "unknown" for s in states.values()) and release is not None:
        builtin_path = f"/lib/modules/{release}/modules.builtin"
        text, why = await _read_text(t, builtin_path)
        if text is not None:
            try:
                from ...parsers.kernel_config import parse_modules_builtin

                parse_modules_builtin(text)
                src.modules_builtin = text
            except ParseError as e:
                src.tried.append(f"{builtin_path}: unreadable ({e})")
        else:
            src.tried.append(f"{builtin_path}: {why}")
        vfio_dir = f"/lib/modules/{release}/kernel/drivers/vfio"
        src.module_files = await _module_files(t, vfio_dir)
        if src.module_files is None:
            src.tried.append(f"{vfio_dir}/: absent")
        states = state()
    if any(s.state == "unknown" for s in states.values()):
        present = [
            p
            for p, ok in zip(RUNTIME_PATHS, await asyncio.gather(*(t.exists(p) for p in RUNTIME_PATHS)), strict=True)
            if ok
        ]
        src.runtime = present
        modules, _ = await _read_text(t, "/proc/modules")
        if modules is not None:
            try:
                from ...parsers.kernel_config import parse_proc_modules

                parse_proc_modules(modules)
                src.loaded_modules = modules
            except ParseError:
                pass
        states = state()

    source_of = {
        "config": src.config_source,
        "modules.builtin": f"/lib/modules/{release}/modules.builtin",
        "module files": f"/lib/modules/{release}/kernel/drivers/vfio/",
        "runtime": "runtime state (/sys/module, /proc/modules, /sys/bus/pci/drivers, /dev/vfio)",
        "none": "every source above",
    }
    evidence = [
        ev(
            ctx,
            s.detail if s.option in s.detail else f"{s.option}: {s.detail}",
            source_of.get(s.source, s.source),
            t.name,
        )
        for s in states.values()
    ]
    if release is not None:
        evidence.append(ev(ctx, release, rel_source, t.name))
    if src.tried:
        evidence.append(ev(ctx, "; ".join(src.tried), "sources that could not be read", t.name))
    data: dict[str, Any] = {
        opt: {"state": s.state, "source": s.source, "detail": s.detail} for opt, s in states.items()
    }
    disabled = [s for s in states.values() if s.state == "n"]
    unknown = [s for s in states.values() if not s.available and s.state != "n"]
    if disabled:
        names = ", ".join(s.option for s in disabled)
        return make(
            ctx,
            "fail",
            f"{names} disabled: {disabled[0].detail}",
            evidence,
            (
                "kernel-config-missing",
                f"The kernel lacks {names}. Rebuild the OLK-6.6 host kernel with CONFIG_VFIO=y|m, "
                "CONFIG_VFIO_IOMMU_TYPE1=y|m and CONFIG_VFIO_PCI=y|m (make menuconfig: Device Drivers → VFIO "
                "Non-Privileged userspace driver framework), install it and reboot.",
            ),
            options=data,
        )
    if unknown:
        names = ", ".join(s.option for s in unknown)
        return make(
            ctx,
            "unknown",
            f"cannot tell whether {names} are enabled: no kernel config, modules.builtin, module file or runtime "
            "trace was readable (unknown, not disabled)",
            evidence,
            (
                "kernel-config-missing",
                "Make the kernel configuration readable: `modprobe configs` (for /proc/config.gz) or install the "
                "kernel's config file as /boot/config-$(uname -r); then run the check again.",
            ),
            options=data,
        )
    shown = ", ".join(f"{s.option}={s.state if s.state != 'unknown' else 'present'}" for s in states.values())
    where = src.config_source if src.config_text is not None else "modules and runtime state"
    return make(ctx, "pass", f"{shown} ({where})", evidence, options=data)
