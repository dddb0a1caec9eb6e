"""iommu.enabled, gpu.iommu_group, gpu.vfio_bound and vfio.device_node: the GPU handed to vfio-pci."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ...parsers.errors import ParseError
from ...targets.base import Target
from ..base import CheckContext, Evidence, Result, Status
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _host, _listdir, _listing, _pci_host, _read_text, _worst, kata_answers
from ._pci import PCI_DEVICES, _bind_steps, _find_gpus, _Pci, _read_pci

IOMMU_GROUPS = "/sys/kernel/iommu_groups"
IOMMU_CLASS = "/sys/class/iommu"
VFIO_DRIVER_DIR = "/sys/bus/pci/drivers/vfio-pci"
VIRTCCA_CMDLINE = (("virtcca_cvm_host", "1"), ("arm_smmu_v3.disable_ecmdq", "1"), ("vfio_pci.disable_idle_d3", "1"))


# --------------------------------------------------------------------------------------------- iommu.enabled


@check(
    "iommu.enabled", "The IOMMU (SMMU) is active on the host", stage="host-prerequisites", flows=FLOW, runs_on="host"
)
async def iommu_enabled(ctx: CheckContext) -> Result:
    from ...parsers.cpuinfo import parse_cmdline

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
    from ...parsers.sysfs import group_viable

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
    t = _pci_host(ctx)
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
    t = _pci_host(ctx)
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
    t = _pci_host(ctx)
    found = await _find_gpus(ctx, t)
    if found.problem is not None:
        return found.problem
    answers, _ = kata_answers(ctx)
    findings = [await _node_finding(ctx, t, g, answers.gpu.iommu_group) for g in found.gpus]
    return _combine(ctx, findings, {"found_by": found.how})
