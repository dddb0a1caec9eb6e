"""guest.nvidia_smi: nvidia-smi inside the confidential container."""

from __future__ import annotations

from typing import Any

from ...parsers.errors import ParseError
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _budget, _first_line, _last_line, kata_answers

SMI_FIELDS = "index,name,pci.bus_id,driver_version,memory.total"


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
    from ...parsers.nvidia_smi import find_failure, parse_gpu_inventory, parse_list

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
