"""host.arch and kernel.version: an Arm host running the OLK-6.6 kernel."""

from __future__ import annotations

import re
from typing import Any

from ...targets.base import Target
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _host, _kernel_release, _kernel_value, _read, _read_text, kata_answers

ARCH_FILE = "/proc/sys/kernel/arch"  # = uname -m (Linux ≥ 6.1; a capture may hold it)
ELF_MACHINES = {0xB7: "aarch64", 0x3E: "x86_64", 0x28: "arm", 0x03: "i386", 0xF3: "riscv64"}


async def _elf_machine(t: Target) -> tuple[str | None, str]:
    """The architecture /bin/sh was built for (e_machine of its ELF header): a captured rootfs has no uname."""
    data, why = await _read(t, "/bin/sh", 20)
    if data is None or len(data) < 20 or data[:4] != b"\x7fELF":
        return None, f"/bin/sh: {why or 'not an ELF file'}"
    machine = int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine:#x}"), "ELF header of /bin/sh"


# --------------------------------------------------------------------------------------------- host.arch


@check("host.arch", "The host is an Arm server (aarch64)", stage="host-prerequisites", flows=FLOW, runs_on="host")
async def host_arch(ctx: CheckContext) -> Result:
    t = _host(ctx)
    arch, source = await _kernel_value(ctx, t, "-m", ARCH_FILE)
    if arch is None:
        arch, elf_source = await _elf_machine(t)
        source = elf_source if arch is not None else f"{source}; {elf_source}"
    if arch is None:
        return make(
            ctx,
            "unknown",
            f"cannot tell the host's architecture ({source})",
            [ev(ctx, "nothing readable", source, t.name)],
        )
    evidence = [ev(ctx, arch, source, t.name)]
    if arch in ("aarch64", "arm64"):
        return make(ctx, "pass", f"{arch} ({source})", evidence, arch=arch)
    return make(
        ctx,
        "warn",
        f"the host is {arch}, not aarch64: virtCCA (Arm CCA) runs on Arm servers only",
        evidence,
        (
            "host-not-arm",
            f"{source} says {arch}. kata-virtcca confidential containers need an aarch64 host with virtCCA firmware; "
            "run this flow on the Arm server (--target ssh://root@HOST), and download the aarch64/arm64 builds of "
            "buildx, the CNI plugins and the NVIDIA driver.",
        ),
        arch=arch,
    )


# --------------------------------------------------------------------------------------------- kernel.version

_RELEASE = re.compile(r"^(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?")
_OE_RELEASE = re.compile(r"\.oe(?P<ver>\d{4})(?P<sp>sp\d+)?", re.I)


async def _os_id(t: Target) -> tuple[str | None, str]:
    text, _ = await _read_text(t, "/etc/os-release", 64 * 1024)
    if text is None:
        return None, ""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and not key.startswith("#"):
            fields[key.strip()] = value.strip().strip('"')
    return fields.get("ID"), fields.get("PRETTY_NAME") or fields.get("NAME") or ""


@check("kernel.version", "Host kernel is OLK-6.6 (6.6.x)", stage="host-prerequisites", flows=FLOW, runs_on="host")
async def kernel_version(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, _ = kata_answers(ctx)
    release, source = await _kernel_release(ctx, t)
    if release is None:
        return make(
            ctx, "unknown", f"cannot read the kernel release ({source})", [ev(ctx, "nothing readable", source, t.name)]
        )
    evidence = [ev(ctx, release, source, t.name)]
    m = _RELEASE.match(release)
    if m is None:
        return make(ctx, "unknown", f"unexpected kernel release {release!r}", evidence)
    os_id, pretty = await _os_id(t)
    if os_id is not None:
        evidence.append(ev(ctx, f"ID={os_id}" + (f" ({pretty})" if pretty else ""), "/etc/os-release", t.name))
    oe = _OE_RELEASE.search(release)
    version = f"{m['major']}.{m['minor']}"
    branch = answers.host.kernel_branch
    data: dict[str, Any] = {"release": release, "version": version, "openeuler_build": bool(oe), "os_id": os_id}
    if version != "6.6":
        return make(
            ctx,
            "warn",
            f"kernel {release} is {version}, not 6.6: the seed requires the {branch} host kernel",
            evidence,
            (
                "kernel-config-missing",
                f"The document's host kernel comes from openEuler's {branch} branch (6.6.x) with CONFIG_VFIO, "
                f"CONFIG_VFIO_IOMMU_TYPE1 and CONFIG_VFIO_PCI; {source} says {release}. Install or build the "
                f"{branch} kernel with virtCCA host support and boot it.",
            ),
            **data,
        )
    if oe:
        note = f"an openEuler build (oe{oe['ver']}{oe['sp'] or ''})"
    elif os_id and os_id.lower() == "openeuler":
        note = "no .oeYYMM tag in the release (a self-built kernel on openEuler; fine when built from OLK-6.6)"
    else:
        note = (
            "not an openEuler kernel build (no .oeYYMM tag): make sure it was built from the OLK-6.6 source "
            "with virtCCA host support"
        )
    return make(ctx, "pass", f"{release} ({source}): 6.6, {note}", evidence, **data)
