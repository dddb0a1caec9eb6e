"""kata-virtcca host and guest checks (seed 002, KATA-*): the Arm host, its OLK-6.6 kernel and VFIO options, the IOMMU,
the GPU's IOMMU group and its vfio-pci binding, /dev/vfio/N, the kata configuration in effect, the OCI hook inside the
guest rootfs, the CNI network, and nvidia-smi inside the confidential container.

Files are read through the host Target (a sysroot works: a capture or a mounted disk); commands run only where the target
can run them, and a sysroot without a machine behind it gives "unknown" for what needs one, never a guess.
"""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import json
import os
import posixpath
import re
import stat
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..parsers.errors import ParseError
from ..targets.base import CommandResult, Target
from ..targets.local import LocalTarget
from ..targets.sysroot import SysrootTarget
from .base import CheckContext, Evidence, Result, Status
from .common import ev, expand_path, make
from .registry import check

if TYPE_CHECKING:
    from ..parsers.sysfs import PciSysfsDevice
    from ..recipe.kata import KataAnswers

FLOW = ("kata-virtcca",)
ARCH_FILE = "/proc/sys/kernel/arch"  # = uname -m (Linux ≥ 6.1; a capture may hold it)
RELEASE_FILE = "/proc/sys/kernel/osrelease"  # = uname -r
PCI_DEVICES = "/sys/bus/pci/devices"
IOMMU_GROUPS = "/sys/kernel/iommu_groups"
IOMMU_CLASS = "/sys/class/iommu"
VFIO_DRIVER_DIR = "/sys/bus/pci/drivers/vfio-pci"
NETNS_DIR = "/var/run/netns"
VIRTCCA_CMDLINE = (("virtcca_cvm_host", "1"), ("arm_smmu_v3.disable_ecmdq", "1"), ("vfio_pci.disable_idle_d3", "1"))
ELF_MACHINES = {0xB7: "aarch64", 0x3E: "x86_64", 0x28: "arm", 0x03: "i386", 0xF3: "riscv64"}
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
CNI_DOCUMENTED = {"isDefaultGateway": True, "forceAddress": False, "ipMasq": True, "hairpinMode": True}
SMI_FIELDS = "index,name,pci.bus_id,driver_version,memory.total"

# --------------------------------------------------------------------------------------------- shared helpers


def kata_answers(ctx: CheckContext) -> tuple[KataAnswers, str]:
    """The recipe's kata answers, or the seed's defaults (and where they came from, for evidence)."""
    from ..recipe.kata import KataAnswers
    from ..recipe.model import KataRecipe

    if isinstance(ctx.recipe, KataRecipe):
        return ctx.recipe.answers, "recipe answers"
    return KataAnswers(), "the seed's defaults (no kata-virtcca recipe given)"


def _host(ctx: CheckContext) -> Target:
    t = ctx.target("host")
    if t is None:  # pragma: no cover - the runner skips checks whose target is absent
        raise RuntimeError("no host target")
    return t


def _budget(ctx: CheckContext) -> float:
    return max(1.0, float(ctx.timeout) * 0.8)


def _can_run(t: Target) -> bool:
    return not (isinstance(t, SysrootTarget) and t.inner is None)


async def _run(ctx: CheckContext, t: Target, argv: list[str]) -> CommandResult | None:
    """The command's result; None when the target only gives file access (a sysroot without a machine)."""
    if not _can_run(t):
        return None
    return await t.run(argv, timeout=_budget(ctx))


async def _read(t: Target, path: str, max_bytes: int = 4 * 1024 * 1024) -> tuple[bytes | None, str]:
    """(content, "") or (None, why it could not be read)."""
    try:
        return await t.read_file(path, max_bytes=max_bytes), ""
    except FileNotFoundError:
        return None, "absent"
    except IsADirectoryError:
        return None, "a directory, not a file"
    except PermissionError:
        return None, "permission denied"
    except OSError as e:
        return None, e.strerror or str(e)


async def _read_text(t: Target, path: str, max_bytes: int = 4 * 1024 * 1024) -> tuple[str | None, str]:
    data, why = await _read(t, path, max_bytes)
    return (data.decode("utf-8", "replace"), "") if data is not None else (None, why)


async def _listdir(t: Target, path: str) -> list[str] | None:
    try:
        return await t.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        return None


async def _readlink(t: Target, path: str) -> str | None:
    """The link's text; None when there is no such link."""
    try:
        return await t.readlink(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0].strip() if lines else ""


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


async def _kernel_value(ctx: CheckContext, t: Target, flag: str, file: str) -> tuple[str | None, str]:
    """``uname <flag>`` on a machine, the /proc/sys file on a sysroot (or when uname fails): (value, source)."""
    if not isinstance(t, SysrootTarget):
        r = await _run(ctx, t, ["uname", flag])
        if r is not None and r.ok and r.stdout.strip():
            return r.stdout.strip(), f"uname {flag}"
    text, why = await _read_text(t, file, 4096)
    if text is not None and text.strip():
        return text.strip(), file
    return None, f"{file}: {why or 'empty'}"


async def _elf_machine(t: Target) -> tuple[str | None, str]:
    """The architecture /bin/sh was built for (e_machine of its ELF header): a captured rootfs has no uname."""
    data, why = await _read(t, "/bin/sh", 20)
    if data is None or len(data) < 20 or data[:4] != b"\x7fELF":
        return None, f"/bin/sh: {why or 'not an ELF file'}"
    machine = int.from_bytes(data[18:20], "little" if data[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine:#x}"), "ELF header of /bin/sh"


async def _kernel_release(ctx: CheckContext, t: Target) -> tuple[str | None, str]:
    return await _kernel_value(ctx, t, "-r", RELEASE_FILE)


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
    from ..parsers.kernel_config import RUNTIME_PATHS, vfio_state

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
                from ..parsers.kernel_config import parse_modules_builtin

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
                from ..parsers.kernel_config import parse_proc_modules

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


# --------------------------------------------------------------------------------------------- iommu.enabled


@check(
    "iommu.enabled", "The IOMMU (SMMU) is active on the host", stage="host-prerequisites", flows=FLOW, runs_on="host"
)
async def iommu_enabled(ctx: CheckContext) -> Result:
    from ..parsers.cpuinfo import parse_cmdline

    t = _host(ctx)
    groups, units = await asyncio.gather(_listdir(t, IOMMU_GROUPS), _listdir(t, IOMMU_CLASS))
    evidence = [
        ev(ctx, _listing(groups), f"ls {IOMMU_GROUPS}/", t.name),
        ev(ctx, _listing(units), f"ls {IOMMU_CLASS}/", t.name),
    ]
    cmdline_text, why = await _read_text(t, "/proc/cmdline", 64 * 1024)
    missing: list[str] = []
    if cmdline_text is not None:
        try:
            params = parse_cmdline(cmdline_text).params
            missing = [f"{k}={v}" for k, v in VIRTCCA_CMDLINE if params.get(k) != v]
        except ParseError:
            missing = [f"{k}={v}" for k, v in VIRTCCA_CMDLINE]
        evidence.append(ev(ctx, cmdline_text.strip(), "/proc/cmdline", t.name))
    hint = (
        f"; the virtCCA host command line also lacks {' '.join(missing)}"
        if missing and cmdline_text is not None
        else ""
    )
    data: dict[str, Any] = {"groups": len(groups or []), "iommu_units": units or [], "cmdline_missing": missing}
    if groups or units:
        summary = f"{len(groups or [])} IOMMU groups" + (f", IOMMU units {', '.join(units[:4])}" if units else "")
        return make(ctx, "pass", summary + (f" (note{hint[1:]})" if hint else ""), evidence, **data)
    if groups is None and units is None and not await t.exists("/sys/kernel"):
        return make(
            ctx,
            "unknown",
            "no sysfs to read (/sys/kernel is absent on this target)",
            evidence,
            ("vfio-no-iommu-group", "Run the check on the host itself (or a capture that includes /sys)."),
        )
    needed = " ".join(f"{k}={v}" for k, v in VIRTCCA_CMDLINE)
    return make(
        ctx,
        "fail",
        f"no IOMMU is active: {IOMMU_GROUPS}/ and {IOMMU_CLASS}/ are empty{hint}",
        evidence,
        (
            "vfio-no-iommu-group",
            "Without an active IOMMU no device gets an IOMMU group and vfio-pci cannot take the GPU (QEMU: 'no "
            "iommu_group found'). Enable the SMMU in the BIOS, boot the OLK-6.6 host kernel with "
            f"`{needed}` on its command line (/etc/default/grub GRUB_CMDLINE_LINUX, then grub2-mkconfig and reboot). "
            "A VM without a virtual IOMMU cannot pass a GPU on.",
        ),
        **data,
        cmdline_read=why or "ok",
    )


def _listing(entries: list[str] | None, limit: int = 12) -> str:
    if entries is None:
        return "(absent)"
    if not entries:
        return "(empty)"
    return " ".join(entries[:limit]) + (f" … ({len(entries)} in all)" if len(entries) > limit else "")


# --------------------------------------------------------------------------------------------- the GPU in sysfs


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
    from ..parsers.sysfs import device_from_values

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
    from ..parsers.sysfs import NVIDIA_VENDOR_ID, parse_hex_id

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


def _worst(statuses: Iterable[Status]) -> Status:
    order: tuple[Status, ...] = ("fail", "unknown", "warn", "pass", "skip")
    found = set(statuses)
    return next((s for s in order if s in found), "pass")


def _bind_steps(pci: _Pci) -> str:
    bdf = pci.dev.bdf
    steps = ["modprobe vfio-pci", f"echo vfio-pci > {PCI_DEVICES}/{bdf}/driver_override"]
    if pci.dev.driver and pci.dev.driver != "vfio-pci":
        steps.append(f"echo {bdf} > {PCI_DEVICES}/{bdf}/driver/unbind")
    steps.append(f"echo {bdf} > /sys/bus/pci/drivers_probe")
    return "; ".join(steps)


# --------------------------------------------------------------------------------------------- gpu.iommu_group


@dataclass
class _Finding:
    status: Status
    summary: str
    evidence: list[Evidence]
    fix: tuple[str, str] | None = None
    data: dict[str, Any] = field(default_factory=dict)


def _combine(ctx: CheckContext, findings: list[_Finding], extra: dict[str, Any] | None = None) -> Result:
    status = _worst(f.status for f in findings)
    lead = next(f for f in findings if f.status == status)
    summary = "; ".join(f.summary for f in findings) if len(findings) > 1 else lead.summary
    evidence = [e for f in findings for e in f.evidence]
    return make(ctx, status, summary, evidence, lead.fix, gpus=[f.data for f in findings], **(extra or {}))


async def _group_finding(ctx: CheckContext, t: Target, pci: _Pci, want: int | None) -> _Finding:
    from ..parsers.sysfs import group_viable

    bdf = pci.dev.bdf
    link_src = f"readlink {PCI_DEVICES}/{bdf}/iommu_group"
    evidence = [ev(ctx, pci.line(), f"{PCI_DEVICES}/{bdf}", t.name)]
    group = pci.dev.iommu_group
    if group is None:
        groups = await _listdir(t, IOMMU_GROUPS)
        evidence += [
            ev(ctx, "(no link)", link_src, t.name),
            ev(ctx, _listing(groups), f"ls {IOMMU_GROUPS}/", t.name),
        ]
        return _Finding(
            "fail",
            f"{bdf} has no IOMMU group (no iommu_group link; {IOMMU_GROUPS}/ {_listing(groups)})",
            evidence,
            (
                "vfio-no-iommu-group",
                f"{bdf} is not isolated by an IOMMU, so vfio-pci cannot take it (QEMU: 'vfio {bdf}: no iommu_group "
                "found'). Enable the SMMU (BIOS, and `virtcca_cvm_host=1 arm_smmu_v3.disable_ecmdq=1 "
                "vfio_pci.disable_idle_d3=1` on the host kernel command line), reboot, and check iommu.enabled.",
            ),
            {"bdf": bdf, "group": None},
        )
    evidence.append(ev(ctx, pci.group_link or "", link_src, t.name))
    members_dir = f"{IOMMU_GROUPS}/{group}/devices"
    names = await _listdir(t, members_dir) or []
    members: list[_Pci] = []
    unreadable: list[str] = []
    for name in names:
        try:
            members.append(pci if name == bdf else await _read_pci(t, name))
        except (FileNotFoundError, ParseError) as e:
            unreadable.append(f"{name} ({e})")
    evidence.append(
        ev(ctx, "\n".join(m.line() for m in members) or "(no members listed)", f"ls -l {members_dir}/", t.name)
    )
    data: dict[str, Any] = {
        "bdf": bdf,
        "group": group,
        "members": [{"bdf": m.dev.bdf, "driver": m.dev.driver, "bridge": m.dev.is_bridge} for m in members],
    }
    if not names:
        members = [pci]  # the group lists nothing readable: judge by the GPU alone
    blockers = [m for m in members if not (m.dev.driver == "vfio-pci" or m.dev.is_bridge)]
    mismatch = want is not None and want != group
    note = f"; the recipe says iommu_group {want}, the real group is {group}" if mismatch else ""
    if not group_viable(m.dev for m in members) or unreadable:
        who = ", ".join(f"{m.dev.bdf} → {m.dev.driver or 'no driver'}" for m in blockers) or "; ".join(unreadable)
        binds = " && ".join(f"({_bind_steps(m)})" for m in blockers)
        return _Finding(
            "fail",
            f"IOMMU group {group} of {bdf} is not viable: {who}{note}",
            evidence,
            (
                "vfio-group-not-viable",
                f"Every device of IOMMU group {group} must be bound to vfio-pci (bridges excepted), or QEMU says "
                f"'group {group} is not viable'. Not yet: {who}. Bind each of them: {binds}. Then "
                f"`ls {members_dir}` and readlink each device's driver to confirm.",
            ),
            data,
        )
    if mismatch:
        return _Finding(
            "warn",
            f"{bdf} is in IOMMU group {group}, viable ({len(members)} member(s)){note}",
            [*evidence, ev(ctx, str(want), "answers.gpu.iommu_group")],
            (
                "vfio-device-missing",
                f"Set answers.gpu.iommu_group to {group}: `ctr run --device /dev/vfio/{want}` names another group "
                f"(or none); the seed's VFIO variable must be /dev/vfio/{group}.",
            ),
            data,
        )
    return _Finding("pass", f"{bdf} is in IOMMU group {group}, viable ({len(members)} member(s))", evidence, None, data)


@check("gpu.iommu_group", "The GPU has a viable IOMMU group", stage="gpu-vfio", flows=FLOW, runs_on="host")
async def gpu_iommu_group(ctx: CheckContext) -> Result:
    t = _host(ctx)
    found = await _find_gpus(ctx, t)
    if found.problem is not None:
        return found.problem
    answers, _ = kata_answers(ctx)
    findings = [await _group_finding(ctx, t, g, answers.gpu.iommu_group) for g in found.gpus]
    return _combine(ctx, findings, {"found_by": found.how})


# --------------------------------------------------------------------------------------------- gpu.vfio_bound


async def _bound_finding(ctx: CheckContext, t: Target, pci: _Pci) -> _Finding:
    bdf = pci.dev.bdf
    src = f"readlink {PCI_DEVICES}/{bdf}/driver"
    evidence = [ev(ctx, pci.driver_link or "(no link: no driver bound)", src, t.name)]
    override = pci.dev.driver_override
    if override is not None:
        evidence.append(ev(ctx, override, f"{PCI_DEVICES}/{bdf}/driver_override", t.name))
    data: dict[str, Any] = {"bdf": bdf, "driver": pci.dev.driver, "driver_override": override}
    if pci.dev.driver == "vfio-pci":
        return _Finding("pass", f"{bdf} is bound to vfio-pci", evidence, None, data)
    has_vfio = await t.exists(VFIO_DRIVER_DIR)
    evidence.append(ev(ctx, "present" if has_vfio else "absent (vfio-pci not loaded)", VFIO_DRIVER_DIR, t.name))
    steps = _bind_steps(pci)
    if pci.dev.driver is None and override == "vfio-pci" and has_vfio:
        return _Finding(
            "fail",
            f"{bdf} has driver_override=vfio-pci but no driver: the vfio-pci probe failed",
            evidence,
            (
                "vfio-probe-failed",
                f"vfio-pci refused {bdf} (dmesg: `vfio-pci {bdf}: probe with driver vfio-pci failed with error -22` "
                "or `vfio-pci: probe of … failed with error -22`, typically no IOMMU group). Fix iommu.enabled, "
                f"then `echo {bdf} > /sys/bus/pci/drivers_probe`.",
            ),
            data,
        )
    now = f"bound to {pci.dev.driver}" if pci.dev.driver else "bound to no driver"
    return _Finding(
        "fail",
        f"{bdf} is {now}, not vfio-pci",
        evidence,
        (
            "vfio-device-missing",
            f"The GPU must be handed to vfio-pci before kata can pass it through ({now} now; QEMU would say "
            f"'failed to open /dev/vfio/N: No such file or directory'). As root (the seed's gpu.sh): {steps}. "
            "Stop whatever uses the GPU first (nvidia-persistenced, containers).",
        ),
        data,
    )


@check("gpu.vfio_bound", "The GPU is bound to vfio-pci", stage="gpu-vfio", flows=FLOW, runs_on="host")
async def gpu_vfio_bound(ctx: CheckContext) -> Result:
    t = _host(ctx)
    found = await _find_gpus(ctx, t)
    if found.problem is not None:
        return found.problem
    findings = [await _bound_finding(ctx, t, g) for g in found.gpus]
    return _combine(ctx, findings, {"found_by": found.how})


# --------------------------------------------------------------------------------------------- vfio.device_node


async def _node_finding(ctx: CheckContext, t: Target, pci: _Pci, want: int | None) -> _Finding:
    bdf = pci.dev.bdf
    group = pci.dev.iommu_group
    listing = await _listdir(t, "/dev/vfio")
    evidence = [ev(ctx, _listing(listing), "ls /dev/vfio", t.name)]
    if group is None:
        evidence.insert(0, ev(ctx, "(no link)", f"readlink {PCI_DEVICES}/{bdf}/iommu_group", t.name))
        return _Finding(
            "fail",
            f"{bdf} has no IOMMU group, so there is no /dev/vfio/N for it",
            evidence,
            (
                "vfio-no-iommu-group",
                "No IOMMU group, no VFIO device node: enable the SMMU and the virtCCA host command line (see "
                "iommu.enabled), reboot, bind the GPU to vfio-pci, and /dev/vfio/<group> appears.",
            ),
            {"bdf": bdf, "node": None},
        )
    node = f"/dev/vfio/{group}"
    data: dict[str, Any] = {"bdf": bdf, "node": node}
    if not await t.exists(node):
        bound = pci.dev.driver == "vfio-pci"
        why = (
            "the GPU is on vfio-pci but the node is missing (devtmpfs/udev, or a container without /dev/vfio)"
            if bound
            else f"the GPU is bound to {pci.dev.driver or 'no driver'}, not vfio-pci"
        )
        return _Finding(
            "fail",
            f"{node} does not exist: {why}",
            evidence,
            (
                "vfio-device-missing",
                f"`ctr run --device {node}` needs the node (QEMU: 'failed to open {node}: No such file or "
                f"directory'). {'Bind the GPU: ' + _bind_steps(pci) if not bound else 'Check `ls -l /dev/vfio`'}; "
                f"then `ls -l /dev/vfio` must list {group}.",
            ),
            data,
        )
    if want is not None and want != group:
        return _Finding(
            "warn",
            f"{node} exists, but the recipe's /dev/vfio/{want} is the wrong group",
            [*evidence, ev(ctx, str(want), "answers.gpu.iommu_group")],
            (
                "vfio-device-missing",
                f"Set answers.gpu.iommu_group to {group} (VFIO={node}); /dev/vfio/{want} "
                f"{'exists but is another group' if listing and str(want) in listing else 'does not exist'}.",
            ),
            data,
        )
    return _Finding("pass", f"{node} exists ({bdf})", evidence, None, data)


@check("vfio.device_node", "/dev/vfio/<group> exists for the GPU", stage="gpu-vfio", flows=FLOW, runs_on="host")
async def vfio_device_node(ctx: CheckContext) -> Result:
    t = _host(ctx)
    found = await _find_gpus(ctx, t)
    if found.problem is not None:
        return found.problem
    answers, _ = kata_answers(ctx)
    findings = [await _node_finding(ctx, t, g, answers.gpu.iommu_group) for g in found.gpus]
    return _combine(ctx, findings, {"found_by": found.how})


# --------------------------------------------------------------------------------------------- kata.config


def _lines_with(text: str, key: str) -> list[str]:
    """``line N: …`` for each line that sets ``key``, commented out or not."""
    pattern = re.compile(rf"^\s*#?\s*{re.escape(key)}\s*=")
    return [f"line {n}: {ln.strip()}" for n, ln in enumerate(text.splitlines(), 1) if pattern.match(ln)]


async def _kata_conf_env(ctx: CheckContext, t: Target) -> tuple[str | None, str]:
    """KATA_CONF_FILE as the host's environment has it (None: unset, or a sysroot with no environment)."""
    r = await _run(ctx, t, ["printenv", "KATA_CONF_FILE"])
    if r is None:
        return None, "no environment on a sysroot"
    value = r.stdout.strip() if r.ok else ""
    return value or None, "printenv KATA_CONF_FILE"


@check(
    "kata.config",
    "The kata configuration in effect sets guest_hook_path",
    stage="kata-config",
    flows=FLOW,
    runs_on="host",
)
async def kata_config(ctx: CheckContext) -> Result:
    from ..parsers.kata_toml import ENV_OVERRIDE, SEARCH_ORDER, effective_config_path, parse_kata_config

    t = _host(ctx)
    answers, origin = kata_answers(ctx)
    want = answers.kata.guest_hook_path.rstrip("/") or "/"
    recipe_file = answers.kata.config_path
    override, env_source = await _kata_conf_env(ctx, t)
    candidates = list(dict.fromkeys([*([override] if override else []), *SEARCH_ORDER, recipe_file]))
    present = await asyncio.gather(*(t.exists(p) for p in candidates))
    existing = [p for p, ok in zip(candidates, present, strict=True) if ok]
    env = {ENV_OVERRIDE: override} if override else {}
    path = effective_config_path(env, set(existing))  # only KATA_CONF_FILE or a path of the search order
    evidence = [
        ev(
            ctx,
            f"{ENV_OVERRIDE}={override}"
            if override
            else (f"{ENV_OVERRIDE} not set" if _can_run(t) else f"{ENV_OVERRIDE} unknown: the search order applies"),
            env_source,
            t.name,
        ),
        ev(ctx, ", ".join(existing) or "(none)", "existing of " + ", ".join(candidates), t.name),
    ]
    fix_set = (
        f'Under the [hypervisor.qemu] table of the file in effect, set `guest_hook_path = "{want}"` (uncomment the '
        "shipped line), so that kata's agent runs the hooks under <guest_hook_path>/prestart in the guest. "
        "`kata-runtime --show-default-config-paths` lists the files it looks at, in order."
    )
    if path is None:
        why = (
            f"{ENV_OVERRIDE}={override}, which does not exist (the runtime fails, it does not fall back)"
            if override
            else "none of " + ", ".join(SEARCH_ORDER) + " exists"
        )
        return make(
            ctx,
            "fail",
            f"no kata configuration file in effect: {why}",
            evidence,
            (
                "kata-config-missing",
                "Install kata-containers (openEuler: the kata-containers package, which ships "
                "/usr/share/defaults/kata-containers/configuration.toml), copy it to "
                "/etc/kata-containers/configuration.toml and edit that copy. " + fix_set,
            ),
            existing=existing,
        )
    text, why = await _read_text(t, path)
    if text is None:
        return make(ctx, "unknown", f"kata loads {path}, but it cannot be read here: {why}", evidence, file=path)
    try:
        cfg = parse_kata_config(text)
    except ParseError as e:
        return make(
            ctx,
            "fail",
            f"{path} (in effect) is not a valid kata configuration: {e}",
            [*evidence, ev(ctx, str(e), path, t.name)],
            ("kata-config-missing", f"Repair {path} (the runtime refuses to start with it). " + fix_set),
            file=path,
        )
    quoted = _lines_with(text, "guest_hook_path")
    evidence.append(ev(ctx, "\n".join(quoted) or "(no guest_hook_path line)", path, t.name))
    others = [p for p in existing if p != path]
    note_others = ""
    if others:
        note_others = f" (also present, not loaded: {', '.join(others)})"
        evidence.append(ev(ctx, ", ".join(others), f"not in effect: {path} comes first", t.name))
    data: dict[str, Any] = {
        "file": path,
        "guest_hook_path": cfg.guest_hook_path,
        "hypervisor": cfg.hypervisor_name,
        "cold_plug_vfio": cfg.cold_plug_vfio,
        "hot_plug_vfio": cfg.hot_plug_vfio,
        "kernel_params": cfg.kernel_params,
        "not_loaded": others,
    }
    got = cfg.guest_hook_path
    if got is None:
        return make(
            ctx,
            "fail",
            f"guest_hook_path is not set in {path}, the file kata loads"
            + (" (it is commented out)" if quoted else "")
            + note_others,
            evidence,
            ("kata-config-missing", fix_set),
            **data,
        )
    if got.rstrip("/") != want.rstrip("/"):
        return make(
            ctx,
            "fail",
            f'{path} sets guest_hook_path = "{got}", but the hook lies under {want} ({origin})',
            [*evidence, ev(ctx, want, "answers.kata.guest_hook_path")],
            (
                "kata-config-missing",
                f"Make them agree: kata's agent looks for hooks in {got}/prestart inside the guest. Either set "
                f'`guest_hook_path = "{want}"` in {path}, or move the hook and change kata.guest_hook_path.',
            ),
            **data,
        )
    summary = f'kata loads {path}: guest_hook_path = "{got}"' + note_others
    if recipe_file != path:
        return make(
            ctx,
            "warn",
            f"{summary}; but the recipe's kata.config_path is {recipe_file}, which kata does not load",
            [*evidence, ev(ctx, recipe_file, "answers.kata.config_path")],
            (
                "kata-config-missing",
                f"Set answers.kata.config_path to {path} (the file in effect), so later edits land where kata reads "
                f"them{f'; or set {ENV_OVERRIDE}' if not override else ''}.",
            ),
            **data,
        )
    if cfg.kernel_param_map.get("virtcca_cvm_guest") != "1":
        return make(
            ctx,
            "warn",
            f"{summary}; but its kernel_params lack virtcca_cvm_guest=1: the guest would not be a virtCCA CVM",
            [*evidence, ev(ctx, "\n".join(_lines_with(text, "kernel_params")) or "(no kernel_params)", path, t.name)],
            (
                "virtcca-not-cvm",
                f"Use the kata-virtcca configuration: kernel_params in [hypervisor.{cfg.hypervisor_name or 'qemu'}] "
                f"of {path} must contain virtcca_cvm_guest=1 (the shim then logs 'Enabling Arm VirtCCA protection').",
            ),
            **data,
        )
    return make(ctx, "pass", summary, evidence, **data)


# --------------------------------------------------------------------------------------------- kata.hook


class _Rootfs:
    """The guest rootfs as files: a SysrootTarget (links resolved inside it), or a folder on a remote host."""

    def __init__(self, target: Target, prefix: str = "") -> None:
        self.target = target  # a SysrootTarget, or the host target with ``prefix`` (the mount point)
        self.prefix = prefix.rstrip("/")
        self.name = f"{target.name}:{prefix}" if prefix else target.name

    def path(self, guest_path: str) -> str:
        return f"{self.prefix}{guest_path}" if self.prefix else guest_path

    async def exists(self, guest_path: str) -> bool:
        return await self.target.exists(self.path(guest_path))

    async def read(self, guest_path: str, max_bytes: int) -> tuple[bytes | None, str]:
        return await _read(self.target, self.path(guest_path), max_bytes)

    async def mode(self, ctx: CheckContext, guest_path: str) -> int | None:
        t = self.target
        if isinstance(t, SysrootTarget):
            return await asyncio.to_thread(lambda: os.stat(t.host_path(guest_path)).st_mode)
        if isinstance(t, LocalTarget):
            return await asyncio.to_thread(lambda: os.stat(self.path(guest_path)).st_mode)
        r = await _run(ctx, t, ["stat", "-L", "-c", "%f", self.path(guest_path)])
        if r is None or not r.ok:
            return None
        try:
            return int(r.stdout.strip(), 16)
        except ValueError:
            return None


async def _mount_line(t: Target, mount_dir: str) -> str | None:
    for path in ("/proc/self/mounts", "/proc/mounts"):
        text, _ = await _read_text(t, path, 1024 * 1024)
        if text is None:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].replace("\\040", " ").rstrip("/") == mount_dir.rstrip("/"):
                return line.strip()
        return None
    return None


async def _guest_rootfs(ctx: CheckContext, host: Target, answers: KataAnswers) -> tuple[_Rootfs | None, list[str]]:
    """Where the guest rootfs can be read: ``rootfs.mount_dir`` on the host when it holds a tree, else a sysroot given
    to doctor that is itself a guest rootfs. Also what was found on the way (for evidence)."""
    notes: list[str] = []
    mount_dir = await expand_path(host, answers.rootfs.mount_dir)
    entries = await _listdir(host, mount_dir)
    if entries:
        line = await _mount_line(host, mount_dir)
        notes.append(f"mounted: {line}" if line else f"{mount_dir} is not a mount point; read as it is")
        if isinstance(host, SysrootTarget):
            return _Rootfs(SysrootTarget(host.host_path(mount_dir))), notes
        if isinstance(host, LocalTarget):
            return _Rootfs(SysrootTarget(mount_dir)), notes
        notes.append("absolute links inside the rootfs resolve on the host (read over the host target)")
        return _Rootfs(host, mount_dir), notes
    notes.append(f"{mount_dir}: {'empty (rootfs.img not mounted)' if entries == [] else 'absent'}")
    if ctx.sysroot and os.path.isdir(ctx.sysroot):
        guest = SysrootTarget(ctx.sysroot)
        if await guest.exists(answers.kata.guest_hook_path):
            notes.append(f"--sysroot {ctx.sysroot} holds {answers.kata.guest_hook_path}: read as the guest rootfs")
            return _Rootfs(guest), notes
    return None, notes


_TOOLKIT = re.compile(r"(?P<cmd>\S*nvidia-container-toolkit)(?:\s|$)")


@check(
    "kata.hook",
    "The OCI prestart hook is in the guest rootfs and executable",
    stage="guest-driver",
    flows=FLOW,
    runs_on="host",
)
async def kata_hook(ctx: CheckContext) -> Result:
    host = _host(ctx)
    answers, origin = kata_answers(ctx)
    hook = answers.driver.hook_path
    hook_root = answers.kata.guest_hook_path.rstrip("/")
    rootfs, notes = await _guest_rootfs(ctx, host, answers)
    evidence = [ev(ctx, "; ".join(notes), f"guest rootfs ({origin}: rootfs.mount_dir)", host.name)]
    if rootfs is None:
        return make(
            ctx,
            "unknown",
            f"the guest rootfs is not readable: {notes[-1]}",
            evidence,
            (
                "kata-hook-missing",
                f"Mount the image first (`mount {answers.rootfs.image} {answers.rootfs.mount_dir}`) or give the "
                "mounted rootfs with --sysroot, then run the check again; unmount before starting containers.",
            ),
        )
    where = rootfs.name
    data: dict[str, Any] = {"rootfs": where, "hook": hook}

    def fail(summary: str, text: str, *more: Evidence) -> Result:
        return make(ctx, "fail", summary, [*evidence, *more], ("kata-hook-missing", text), **data)

    if not await rootfs.exists(hook):
        return fail(
            f"{hook} is not in the guest rootfs ({where})",
            f"Add the hook (KATA-1.6) inside the rootfs: `mkdir -p {posixpath.dirname(hook)}`, write "
            f"`#!/bin/bash -x` and `/usr/bin/nvidia-container-toolkit -debug $@` into {hook}, `chmod +x {hook}`; "
            "without it nvidia-smi is missing in the container.",
            ev(ctx, "(absent)", rootfs.path(hook), where),
        )
    mode = await rootfs.mode(ctx, hook)
    data["mode"] = f"{stat.S_IMODE(mode):04o}" if mode is not None else None
    if mode is not None and not stat.S_ISREG(mode):
        return fail(f"{hook} is not a regular file", f"Replace {hook} with the hook script.")
    mode_ev = ev(ctx, f"mode {data['mode']}" if mode is not None else "mode unknown", f"stat {hook}", where)
    if mode is not None and not mode & 0o111:
        return fail(
            f"{hook} is not executable (mode {data['mode']}): kata's agent skips it",
            f"`chmod +x {rootfs.path(hook)}` (KATA-1.6): the agent runs only executable files under "
            f"{hook_root}/prestart.",
            mode_ev,
        )
    raw, why = await rootfs.read(hook, 64 * 1024)
    if raw is None:
        return make(ctx, "unknown", f"{hook} cannot be read: {why}", [*evidence, mode_ev], **data)
    text = raw.decode("utf-8", "replace")
    first = text.split("\n", 1)[0]
    shebang_ev = ev(ctx, repr(first) if "\r" in first else first, f"line 1 of {hook}", where)
    if not first.startswith("#!"):
        return fail(
            f"{hook} has no shebang line (line 1: {first[:80]!r})",
            f"Make line 1 of {hook} `#!/bin/bash -x` (the seed's hook): the agent executes the file directly.",
            mode_ev,
            shebang_ev,
        )
    if "\r" in text:
        return fail(
            f"{hook} has CRLF line endings: the kernel looks for the interpreter {first[2:].strip()!r} with a \\r",
            f"Convert it: `sed -i 's/\\r$//' {rootfs.path(hook)}` (it was edited on Windows).",
            mode_ev,
            shebang_ev,
        )
    interpreter = first[2:].strip().split()[0] if first[2:].strip() else ""
    if not interpreter or not await rootfs.exists(interpreter):
        return fail(
            f"the hook's interpreter {interpreter or '(none)'} is not in the guest rootfs",
            f"Install it into the rootfs (`dnf --installroot={answers.rootfs.mount_dir} install bash`) or change "
            f"line 1 of {hook}.",
            mode_ev,
            shebang_ev,
        )
    body = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and not ln.strip().startswith("#")]
    call = next((m for m in (_TOOLKIT.search(ln) for ln in body) if m), None)
    call_line = next((ln for ln in body if _TOOLKIT.search(ln)), "")
    if call is None:
        return fail(
            f"{hook} does not call nvidia-container-toolkit",
            f"The hook must run the toolkit: add `/usr/bin/nvidia-container-toolkit -debug $@` to {hook} (KATA-1.6).",
            mode_ev,
            shebang_ev,
            ev(ctx, "\n".join(body[:6]) or "(no commands)", hook, where),
        )
    call_ev = ev(ctx, call_line, hook, where)
    tool = call["cmd"]
    tool_found = await rootfs.exists(tool) if tool.startswith("/") else False
    if not tool.startswith("/"):
        for d in ("/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"):
            if await rootfs.exists(f"{d}/{tool}"):
                tool, tool_found = f"{d}/{tool}", True
                break
    if not tool_found:
        return fail(
            f"{hook} calls {call['cmd']}, which is not in the guest rootfs",
            f"Install nvidia-container-toolkit into the rootfs (KATA-1.1): `dnf --installroot="
            f"{answers.rootfs.mount_dir} install nvidia-container-toolkit -y`.",
            mode_ev,
            call_ev,
        )
    kind = posixpath.basename(posixpath.dirname(hook))
    if posixpath.dirname(posixpath.dirname(hook)) != hook_root or kind not in HOOK_KINDS:
        return fail(
            f"{hook} is not in {hook_root}/prestart/, where kata's agent looks",
            f"Move it to {hook_root}/prestart/{posixpath.basename(hook)} (hooks sit in "
            "<guest_hook_path>/{prestart,poststart,poststop}).",
            mode_ev,
        )
    return make(
        ctx,
        "pass",
        f"{hook} in {where}: mode {data['mode']}, {first.strip()}, calls {tool}",
        [*evidence, mode_ev, shebang_ev, call_ev],
        **data,
    )


# --------------------------------------------------------------------------------------------- cni.network


@dataclass
class _Part:
    status: Status
    observed: str
    source: str
    problem: str = ""


def _conf_part(text: str | None, why: str, path: str, answers: KataAnswers) -> tuple[_Part, dict[str, Any]]:
    cni = answers.cni
    if text is None:
        return _Part("fail", f"({why})", path, f"{path} is {why}"), {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        line = text.splitlines()[e.lineno - 1] if 0 < e.lineno <= len(text.splitlines()) else ""
        return _Part(
            "fail", f"line {e.lineno}: {line.strip()}", path, f"{path} is not JSON: {e.msg} (line {e.lineno})"
        ), {}
    if not isinstance(doc, dict):
        return _Part("fail", text.strip()[:200], path, f"{path} is not a JSON object"), {}
    ipam = doc.get("ipam") if isinstance(doc.get("ipam"), dict) else {}
    subnet = ipam.get("subnet") if isinstance(ipam, dict) else None
    shown = json.dumps({k: doc.get(k) for k in ("name", "type", "bridge")} | {"ipam": ipam}, ensure_ascii=False)
    problems: list[str] = []
    for key, want in (("name", cni.network_name), ("type", "bridge"), ("bridge", cni.bridge)):
        if doc.get(key) != want:
            problems.append(f'"{key}" is {json.dumps(doc.get(key))}, expected "{want}"')
    if not isinstance(ipam, dict) or ipam.get("type") != "host-local":
        problems.append(f'"ipam.type" is {json.dumps(ipam.get("type") if ipam else None)}, expected "host-local"')
    if not isinstance(subnet, str):
        problems.append('"ipam.subnet" is missing')
    elif "{" in subnet:
        problems.append(f'"ipam.subnet" is still the placeholder {subnet}: put the subnet ({cni.subnet}) there')
    else:
        try:
            if ipaddress.ip_network(subnet, strict=False) != ipaddress.ip_network(cni.subnet, strict=False):
                problems.append(f'"ipam.subnet" is {subnet}, the recipe says {cni.subnet}')
        except ValueError:
            problems.append(f'"ipam.subnet" {subnet!r} is not a network')
    if "cniVersion" not in doc:
        problems.append('"cniVersion" is missing (the document uses "0.4.0")')
    differs = [f"{k}={json.dumps(doc.get(k))}" for k, v in CNI_DOCUMENTED.items() if doc.get(k) != v]
    facts = {"subnet": subnet, "bridge": doc.get("bridge"), "name": doc.get("name"), "differs_from_document": differs}
    if problems:
        return _Part("fail", shown, path, "; ".join(problems)), facts
    note = f" (differs from the document: {', '.join(differs)})" if differs else ""
    return _Part("pass", shown + note, path), facts


def _address_part(r: CommandResult | None, netns: str, subnet: str, argv: str) -> tuple[_Part, list[str]]:
    if r is None:
        return _Part("unknown", "(commands cannot run on a sysroot)", argv, "cannot run ip here"), []
    if r.rc == 127:
        return _Part("unknown", _last_line(r.stderr) or "ip: not found", argv, "ip (iproute2) is not installed"), []
    if not r.ok:
        line = _last_line(r.stderr) or f"exit {r.rc}"
        return _Part("fail", line, argv, f"ip -n {netns} failed: {line}"), []
    try:
        links = json.loads(r.stdout or "[]")
    except json.JSONDecodeError:
        return _Part("unknown", _first_line(r.stdout)[:200], argv, "ip -j printed no JSON (iproute2 too old?)"), []
    net = ipaddress.ip_network(subnet, strict=False)
    seen: list[str] = []
    inside: list[str] = []
    for link in links if isinstance(links, list) else []:
        for a in link.get("addr_info", []) if isinstance(link, dict) else []:
            if not isinstance(a, dict) or a.get("family") not in ("inet", "inet6"):
                continue
            text = f"{link.get('ifname')} {a.get('local')}/{a.get('prefixlen')}"
            seen.append(text)
            try:
                if ipaddress.ip_address(a.get("local", "")) in net:
                    inside.append(text)
            except ValueError:
                continue
    if not inside:
        return _Part(
            "fail",
            ", ".join(seen) or "(no addresses)",
            argv,
            f"no address from {subnet} inside netns {netns}",
        ), []
    return _Part("pass", ", ".join(inside), argv), inside


@check(
    "cni.network",
    "CNI network: conf file, network namespace and an address from the subnet",
    stage="cni-network",
    flows=FLOW,
    runs_on="host",
)
async def cni_network(ctx: CheckContext) -> Result:
    t = _host(ctx)
    answers, origin = kata_answers(ctx)
    cni = answers.cni
    conf_path = f"{cni.conf_dir.rstrip('/')}/{cni.network_name}.conf"
    text, why = await _read_text(t, conf_path, 1024 * 1024)
    conf, facts = _conf_part(text, why, conf_path, answers)
    ns_path = f"{NETNS_DIR}/{cni.netns}"
    ns_ok = await t.exists(ns_path)
    ns = _Part(
        "pass" if ns_ok else "fail",
        "exists" if ns_ok else "(absent)",
        ns_path,
        "" if ns_ok else f"network namespace {cni.netns} does not exist ({ns_path})",
    )
    argv = ["ip", "-n", cni.netns, "-j", "addr"]
    shown_argv = " ".join(argv)
    if ns_ok:
        addr, inside = _address_part(await _run(ctx, t, argv), cni.netns, cni.subnet, shown_argv)
    else:
        addr, inside = _Part("fail", "(not checked: no namespace)", shown_argv), []
    parts = {"conf": conf, "netns": ns, "address": addr}
    evidence = [ev(ctx, f"{name}: {p.status}: {p.observed}", p.source, t.name) for name, p in parts.items()]
    data: dict[str, Any] = {
        "parts": {
            name: {"status": p.status, "observed": p.observed, "problem": p.problem} for name, p in parts.items()
        },
        "conf": facts,
        "addresses": inside,
        "answers": origin,
    }
    status = _worst(p.status for p in parts.values())
    problems = [p.problem for p in parts.values() if p.problem and p.status == status]
    if status == "fail":
        steps = []
        if conf.status == "fail":
            steps.append(
                f"write {conf_path} as in KATA-4.3 (name {cni.network_name}, bridge {cni.bridge}, "
                f"ipam host-local subnet {cni.subnet})"
            )
        if ns.status == "fail":
            steps.append(f"`ip netns add {cni.netns}` (KATA-4.4)")
        if addr.status == "fail":
            steps.append(
                f"`CNI_PATH={cni.bin_dir} cnitool add {cni.network_name} {ns_path}` then "
                f"`cnitool check {cni.network_name} {ns_path}` (KATA-4.5)"
            )
        return make(
            ctx,
            "fail",
            "; ".join(problems),
            evidence,
            (
                "cni-network-broken",
                "Fix the network: " + "; ".join(steps) + f"; `ip -n {cni.netns} addr` must then "
                f"show an address from {cni.subnet}.",
            ),
            **data,
        )
    if status == "unknown":
        return make(ctx, "unknown", "; ".join(problems), evidence, **data)
    return make(
        ctx,
        "pass",
        f"{conf_path} defines {cni.network_name} on {cni.bridge} with {cni.subnet}; netns {cni.netns} has "
        f"{', '.join(inside)}",
        evidence,
        **data,
    )


# --------------------------------------------------------------------------------------------- guest.nvidia_smi

_NVML_CODES = ("nvml_init_failed", "driver_library_mismatch", "driver_unreachable", "library_not_found")
_ABSENT_GPU_CODES = ("no_devices",)


@check(
    "guest.nvidia_smi",
    "nvidia-smi inside the confidential container shows the GPU",
    stage="confidential-container",
    flows=FLOW,
    runs_on="guest",
)
async def guest_nvidia_smi(ctx: CheckContext) -> Result:
    from ..parsers.nvidia_smi import find_failure, parse_gpu_inventory, parse_list

    t = ctx.target("guest")
    if t is None:  # pragma: no cover - the runner skips it
        raise RuntimeError("no guest target")
    answers, _ = kata_answers(ctx)
    argv = ["nvidia-smi", f"--query-gpu={SMI_FIELDS}", "--format=csv,noheader,nounits"]
    command = " ".join(argv)
    r = await t.run(argv, timeout=_budget(ctx))
    both = (r.stdout + "\n" + r.stderr).strip()
    failure = find_failure(both)
    shown = failure.line.strip() if failure else (_last_line(r.stderr) or _last_line(r.stdout) or f"exit {r.rc}")
    evidence = [ev(ctx, f"{shown} (exit {r.rc})", command, t.name)]
    steps = (
        "KATA-1.5: install the NVIDIA driver into the guest rootfs; KATA-1.6: the prestart hook "
        f'{answers.driver.hook_path}, executable; KATA-1.8: guest_hook_path = "{answers.kata.guest_hook_path}" in '
        "the kata configuration in effect (kata.hook and kata.config check these)"
    )
    if r.rc == 127 or (failure is not None and failure.code == "not_found"):
        return make(
            ctx,
            "fail",
            f"nvidia-smi: not found in {t.name}",
            evidence,
            (
                "gpu-missing-in-guest",
                f"The driver tools are not in the container: the hook did not run or the guest lacks the driver. "
                f"Check {steps}; then start the container again (KATA-5.1).",
            ),
            rc=r.rc,
        )
    if failure is not None and failure.code in (*_NVML_CODES, "device_handle_error"):
        return make(
            ctx,
            "fail",
            f"nvidia-smi cannot initialise NVML in {t.name}: {failure.line.strip()}",
            evidence,
            (
                "nvml-init-failed",
                f"{failure.hint[:1].upper()}{failure.hint[1:]}. The guest's driver ({answers.driver.version} per the recipe) must match its "
                "user-space libraries and the GPU must be passed in (`ctr run --device /dev/vfio/N`, "
                "vfio.device_node); see the guest's `dmesg | grep NVRM`.",
            ),
            rc=r.rc,
            failure=failure.code,
        )
    if failure is not None and failure.code in _ABSENT_GPU_CODES:
        return make(
            ctx,
            "fail",
            f"nvidia-smi in {t.name} sees no GPU: {failure.line.strip()}",
            evidence,
            (
                "gpu-missing-in-guest",
                "The driver is there but the GPU was not passed in: start the container with "
                f"`--device /dev/vfio/{answers.gpu.iommu_group or 'N'}` (KATA-5.1) on a vfio-pci-bound GPU "
                f"(gpu.vfio_bound, vfio.device_node); also {steps}.",
            ),
            rc=r.rc,
            failure=failure.code,
        )
    gpus: list[dict[str, Any]] = []
    if r.ok:
        try:
            gpus = [
                {
                    "index": g.index,
                    "name": g.name,
                    "bus_id": g.pci_bus_id,
                    "driver": g.driver_version,
                    "memory_mib": g.memory_total_mib,
                }
                for g in parse_gpu_inventory(r.stdout)
            ]
        except ParseError:
            listing = await t.run(["nvidia-smi", "-L"], timeout=_budget(ctx))
            if listing.ok:
                try:
                    gpus = [{"index": g.index, "name": g.name, "uuid": g.uuid} for g in parse_list(listing.stdout)]
                except ParseError:
                    gpus = []
                evidence.append(ev(ctx, _first_line(listing.stdout), "nvidia-smi -L", t.name))
    if not r.ok and not gpus:
        return make(
            ctx,
            "fail",
            f"nvidia-smi failed in {t.name} (exit {r.rc}): {shown}",
            evidence,
            ("nvml-init-failed", f"Run `nvidia-smi` in the container and read its message; check {steps}."),
            rc=r.rc,
        )
    if not gpus:
        return make(
            ctx,
            "fail",
            f"nvidia-smi in {t.name} lists no GPU",
            evidence,
            ("gpu-missing-in-guest", f"Pass the GPU in (`--device /dev/vfio/N`, KATA-5.1) and check {steps}."),
        )
    evidence[0] = ev(ctx, _first_line(r.stdout), command, t.name)
    first = gpus[0]
    driver = first.get("driver")
    shown_gpus = ", ".join(
        f"GPU {g['index']}: {g['name']}" + (f" ({g['bus_id']})" if g.get("bus_id") else "") for g in gpus
    )
    note = ""
    if driver and driver != answers.driver.version:
        note = f"; note: the recipe's driver.version is {answers.driver.version}"
    return make(
        ctx,
        "pass",
        f"{shown_gpus}" + (f", driver {driver}" if driver else "") + note,
        evidence,
        gpus=gpus,
    )
