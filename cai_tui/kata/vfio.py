"""KATA-3.1–3.2: which NVIDIA GPUs, their IOMMU groups and the groups' members, and what binding them to vfio-pci
writes where (the plan). Applying and undoing it: :mod:`cai_tui.kata.vfio_apply`.

Everything is read through a sysroot (``/`` on the host itself, the kata lab's fake tree in tests), with the kata
checks' own readers (:mod:`cai_tui.checks.kata._pci`), so the plan and the guard checks see the same devices.

A group is viable when every member is on vfio-pci, bridges aside (class 0x06: vfio-pci takes only normal functions,
and the kernel lets a group's bridges stay with pcieport). The plan binds every other member too, naming its current
driver. **A member that cannot be taken** (the plan refuses and names it), as sysfs tells it:

* ``boot_vga`` reads 1: the display the host's firmware console runs on (a GPU or the BMC's VGA);
* class 0x01 (storage: NVMe, SATA, SAS, RAID) with a driver bound: the host's disks may be on it (``nvme*/…`` and
  ``block/…`` below the device are named);
* class 0x02 (network) with a driver bound: the host's network may run on it (``net/<if>/operstate`` is named).

Anything else (the GPU's audio function on snd_hda_intel, its USB controller, an unbound function) is taken. Whether a
process holds the GPU open is not visible in sysfs: unbinding nvidia waits for its users, so stop them first (notes).

Blocking reasons, each with its fix: no GPU found; no IOMMU group (the IOMMU is off); the vfio-pci driver absent
(``/sys/bus/pci/drivers/vfio-pci``: ``modprobe vfio-pci``, or a kernel without CONFIG_VFIO_PCI); a member that cannot
be taken.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from ..checks.kata._common import _listdir, _read_text, _readlink
from ..checks.kata._pci import PCI_DEVICES, _read_pci
from ..checks.kata.vfio import IOMMU_GROUPS, VFIO_DRIVER_DIR
from ..parsers.errors import ParseError
from ..targets.sysroot import SysrootTarget

VFIO = "vfio-pci"
PCI_BUS = "/sys/bus/pci"
DRIVERS_PROBE = f"{PCI_BUS}/drivers_probe"
RECORD = "kata-vfio"  # the undo record (cai_tui.kata.state)
CRITICAL_CLASSES = {
    0x01: "a storage controller: the host's disks may be on it",
    0x02: "a network controller: the host's network may run on it",
}


class VfioError(Exception):
    """Bad input (exit 2) or a failed run (exit 1); the message names what and the fix."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Write:
    """One sysfs write: ``data`` (without the newline echo adds) into ``path`` (under the sysroot)."""

    path: str
    data: str

    def shell(self) -> str:
        return f"echo {self.data} > {self.path}" if self.data else f"echo > {self.path}"


@dataclass
class Member:
    bdf: str
    ids: str  # "10de:2335"
    class_code: int
    class_name: str
    driver: str | None
    override: str | None
    is_bridge: bool
    action: str = "keep"  # keep (on vfio-pci) | bind | bridge | refuse
    why: str = ""  # for refuse: what the device is; for bind: its current driver

    def line(self) -> str:
        return f"{self.bdf} [{self.ids}] {self.class_name} → {self.driver or '(no driver)'}"


@dataclass
class Blocker:
    what: str
    fix: str
    bdf: str | None = None


@dataclass
class GroupPlan:
    gpu: str
    group: int | None
    members: list[Member] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)

    @property
    def to_bind(self) -> list[Member]:
        return [m for m in self.members if m.action == "bind"]

    @property
    def node(self) -> str | None:
        return None if self.group is None else f"/dev/vfio/{self.group}"


@dataclass
class VfioPlan:
    sysroot: str
    found_by: str  # "--bdf" / "answers.gpu.bdf" / "sysfs scan"
    groups: list[GroupPlan] = field(default_factory=list)
    blockers: list[Blocker] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def all_blockers(self) -> list[Blocker]:
        return self.blockers + [b for g in self.groups for b in g.blockers]

    @property
    def viable(self) -> bool:
        return not self.all_blockers

    @property
    def to_bind(self) -> list[Member]:
        return [m for g in self.groups for m in g.to_bind]

    def to_json(self) -> dict[str, Any]:
        return {
            "sysroot": self.sysroot,
            "found_by": self.found_by,
            "viable": self.viable,
            "groups": [
                {
                    "gpu": g.gpu,
                    "group": g.group,
                    "node": g.node,
                    "members": [asdict(m) for m in g.members],
                    "writes": [asdict(w) for m in g.to_bind for w in bind_writes(m)],
                }
                for g in self.groups
            ],
            "blockers": [asdict(b) for b in self.all_blockers],
            "notes": self.notes,
        }


def bind_writes(m: Member) -> list[Write]:
    """What hands ``m`` to vfio-pci, as Documentation/ABI/testing/sysfs-bus-pci has it: the override (which alone binds
    nothing), the unbind from the current driver (drivers_probe only probes a device without a driver), the probe."""
    dev = f"{PCI_DEVICES}/{m.bdf}"
    writes = [Write(f"{dev}/driver_override", VFIO)]
    if m.driver is not None:
        writes.append(Write(f"{PCI_BUS}/drivers/{m.driver}/unbind", m.bdf))
    writes.append(Write(DRIVERS_PROBE, m.bdf))
    return writes


def sysroot_of(sysroot: str | os.PathLike[str] | None) -> SysrootTarget:
    return SysrootTarget(os.fspath(sysroot) if sysroot else "/")


async def _read_member(t: SysrootTarget, bdf: str) -> Member:
    pci = await _read_pci(t, bdf)
    d = pci.dev
    return Member(
        bdf=d.bdf,
        ids=f"{d.vendor_id:04x}:{d.device_id:04x}",
        class_code=d.class_code,
        class_name=d.class_name,
        driver=d.driver,
        override=d.driver_override,
        is_bridge=d.is_bridge,
    )


async def _in_use(t: SysrootTarget, m: Member) -> str | None:
    """Why ``m`` cannot be taken from the host (see the module's rule), or None."""
    dev = f"{PCI_DEVICES}/{m.bdf}"
    boot_vga, _ = await _read_text(t, f"{dev}/boot_vga", 64)
    if boot_vga is not None and boot_vga.strip() == "1":
        return "the boot VGA device (boot_vga = 1): the host's console runs on it"
    base = m.class_code >> 16
    if base not in CRITICAL_CLASSES or m.driver is None:
        return None
    why = f"{CRITICAL_CLASSES[base]} ({m.class_name} on {m.driver})"
    if base == 0x02:
        ifaces = await _listdir(t, f"{dev}/net") or []
        states = []
        for i in ifaces:
            state, _ = await _read_text(t, f"{dev}/net/{i}/operstate", 64)
            states.append(f"{i} {(state or '?').strip()}")
        if states:
            why += f"; interfaces: {', '.join(states)}"
    else:
        disks: list[str] = []
        for ctrl in await _listdir(t, f"{dev}/nvme") or []:
            disks += [n for n in await _listdir(t, f"{dev}/nvme/{ctrl}") or [] if n.startswith("nvme")]
        disks += await _listdir(t, f"{dev}/block") or []
        if disks:
            why += f"; disks: {', '.join(disks)}"
    return why


async def _find_gpus(t: SysrootTarget) -> list[str]:
    """NVIDIA (0x10de) display-class functions, as gpu.present finds them."""
    from ..parsers.sysfs import NVIDIA_VENDOR_ID

    found = []
    for name in await _listdir(t, PCI_DEVICES) or []:
        try:
            pci = await _read_pci(t, name)
        except (FileNotFoundError, ParseError):
            continue
        if pci.dev.vendor_id == NVIDIA_VENDOR_ID and pci.dev.is_gpu:
            found.append(pci.dev.bdf)
    return found


async def _group_plan(t: SysrootTarget, bdf: str) -> GroupPlan:
    gpu = await _read_member(t, bdf)
    link = await _readlink(t, f"{PCI_DEVICES}/{bdf}/iommu_group")
    from ..parsers.sysfs import group_from_link

    group = group_from_link(link) if link else None
    plan = GroupPlan(bdf, group)
    if group is None:
        groups = await _listdir(t, IOMMU_GROUPS)
        plan.members = [gpu]
        plan.blockers.append(
            Blocker(
                f"{bdf} has no IOMMU group (no {PCI_DEVICES}/{bdf}/iommu_group link; {IOMMU_GROUPS}/ is "
                f"{'empty' if not groups else 'without it'}): the IOMMU is off, vfio-pci cannot take it "
                "(its probe fails with error -22)",
                "enable the SMMU in the BIOS and boot the host kernel with `virtcca_cvm_host=1 "
                "arm_smmu_v3.disable_ecmdq=1 vfio_pci.disable_idle_d3=1` (GRUB_CMDLINE_LINUX, grub2-mkconfig, "
                "reboot); `cai-tui doctor --only iommu.enabled` then passes",
                bdf,
            )
        )
        return plan
    names = await _listdir(t, f"{IOMMU_GROUPS}/{group}/devices") or [bdf]
    for name in names:
        m = gpu if name == bdf else await _read_member(t, name)
        plan.members.append(m)
        if m.is_bridge:
            m.action, m.why = "bridge", "a bridge stays with its driver (vfio-pci takes only normal functions)"
        elif m.driver == VFIO:
            m.action = "keep"
        else:
            reason = await _in_use(t, m)
            if reason is not None:
                m.action, m.why = "refuse", reason
                who = (
                    f"{bdf} itself" if m.bdf == bdf else f"IOMMU group {group} of {bdf} holds {m.bdf} [{m.ids}], which"
                )
                plan.blockers.append(
                    Blocker(
                        f"{who} cannot be taken from the host: {reason}",
                        f"pass through a GPU whose group has no host-critical device (another slot, or a "
                        f"platform with ACS isolating {m.bdf}; `ls {IOMMU_GROUPS}/*/devices`), or give the "
                        "host's disks/network another controller first",
                        m.bdf,
                    )
                )
            else:
                m.action, m.why = "bind", f"now on {m.driver or 'no driver'}"
    return plan


async def survey(sysroot: str | None, bdf: str | None, found_by: str = "--bdf") -> VfioPlan:
    """Read the GPUs (``bdf``, or every NVIDIA GPU), their groups and members, and decide what to bind."""
    from ..recipe.types import parse_bdf

    t = sysroot_of(sysroot)
    plan = VfioPlan(t.root, found_by if bdf else "sysfs scan")
    if not await t.exists(PCI_DEVICES):
        plan.blockers.append(
            Blocker(f"{PCI_DEVICES} is absent under {t.root}", "give the host's root (or the lab's tree) as --sysroot")
        )
        return plan
    if bdf:
        try:
            bdf = parse_bdf(bdf)
        except ValueError as e:
            raise VfioError(f"--bdf {bdf!r}: {e} (DDDD:BB:SS.F, as `lspci -nn -D` prints it)", 2) from None
        if not await t.exists(f"{PCI_DEVICES}/{bdf}"):
            raise VfioError(
                f"{found_by} names {bdf}, which the host does not have ({PCI_DEVICES}/{bdf} is absent); "
                "`lspci -nn -D | grep -i nvidia` lists the GPUs",
                2,
            )
        gpus = [bdf]
    else:
        gpus = await _find_gpus(t)
        if not gpus:
            plan.blockers.append(
                Blocker(
                    f"no NVIDIA GPU (vendor 0x10de, display class) in {PCI_DEVICES}",
                    "check `lspci -nn -D | grep -i nvidia`; set answers.gpu.bdf or --bdf to the GPU's address",
                )
            )
            return plan
        if len(gpus) > 1:
            plan.notes.append(
                f"{len(gpus)} NVIDIA GPUs found ({', '.join(gpus)}): all are planned; give --bdf (answers.gpu.bdf) "
                "to bind one"
            )
    vfio_loaded = await t.exists(VFIO_DRIVER_DIR)
    try:
        plan.groups = list(await asyncio.gather(*(_group_plan(t, g) for g in gpus)))
    except (FileNotFoundError, ParseError) as e:
        raise VfioError(f"cannot read sysfs under {t.root}: {e}") from None
    gpu = next((m for g in plan.groups for m in g.members if m.bdf == bdf), None)
    if gpu is not None and not gpu.ids.startswith("10de:"):
        plan.notes.append(f"{bdf} [{gpu.ids}] is not an NVIDIA function")
    if not vfio_loaded and (plan.to_bind or not plan.groups):
        plan.blockers.append(
            Blocker(
                f"the vfio-pci driver is not loaded ({VFIO_DRIVER_DIR} is absent under {t.root})",
                "`modprobe vfio-pci` (a kernel built with CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1 and CONFIG_VFIO_PCI; "
                "`cai-tui doctor --only kernel.config` says which is missing), then plan again",
            )
        )
    if any(m.driver == "nvidia" for m in plan.to_bind):
        plan.notes.append(
            "unbinding nvidia waits for its users: stop nvidia-persistenced, nvidia-fabricmanager and any container "
            "using the GPU first (`fuser -v /dev/nvidia*`)"
        )
    return plan


def plan_text(plan: VfioPlan) -> list[str]:
    """The plan for a person: each GPU, its group and members, the writes; the blockers with their fixes."""
    lines = [f"sysroot: {plan.sysroot} (GPUs by {plan.found_by})"]
    for g in plan.groups:
        gpu = next((m for m in g.members if m.bdf == g.gpu), None)
        head = gpu.line() if gpu else g.gpu
        lines.append(f"GPU {head}")
        if g.group is None:
            lines.append("  IOMMU group: none")
            continue
        lines.append(f"  IOMMU group {g.group} ({IOMMU_GROUPS}/{g.group}/devices), {len(g.members)} member(s):")
        for m in g.members:
            tag = {
                "keep": "on vfio-pci already",
                "bind": f"bind to vfio-pci (now {m.driver or 'no driver'})",
                "bridge": "bridge, left alone",
                "refuse": f"CANNOT BE TAKEN: {m.why}",
            }[m.action]
            lines.append(f"    {m.line()}: {tag}")
        for m in g.to_bind:
            for w in bind_writes(m):
                lines.append(f"  write: {w.shell()}")
        if g.node and not g.blockers:
            lines.append(f"  then: {g.node} appears (VFIO={g.node})" if g.to_bind else f"  VFIO={g.node}")
    for n in plan.notes:
        lines.append(f"note: {n}")
    for b in plan.all_blockers:
        lines.append(f"blocked: {b.what}")
        lines.append(f"  fix: {b.fix}")
    if plan.viable:
        lines.append(
            "nothing to bind: every member is on vfio-pci" if not plan.to_bind else "viable: apply binds the above"
        )
    return lines
