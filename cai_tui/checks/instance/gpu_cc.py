"""gpu.cc_mode and gpu.cc_ready: the GPUs' confidential-computing mode and ready state."""

from __future__ import annotations

import asyncio
from typing import Any

from ...parsers.conf_compute import CcQuery, CcStatus, parse_query, parse_ready, parse_status
from ...parsers.errors import ParseError
from ...parsers.nvidia_smi import GpuInfo
from ...targets.capture import is_not_captured
from ..base import CheckContext, Evidence, Result
from ..common import ev, make
from ..registry import check
from ._common import (
    CC_TIMEOUT,
    CMD_SHARE,
    GPU_TIMEOUT,
    ROLE,
    STAGE_INSTANCE,
    _cmd,
    _last_line,
    _line_with,
    _nvml_fix,
    inventory,
    smi,
)
from .commands import CC_F, CC_GRS, CC_Q, SMI_INVENTORY, cc_f_gpu

FIX_CC_OFF = (
    "gpu-cc-off",
    "The GPU is not in confidential-computing mode, so its memory and the CPU–GPU traffic are not protected. Use a "
    "gn8v-tee instance (its GPUs run in CC mode inside the TDX guest); on your own hosts switch CC mode on with "
    "NVIDIA's gpu-admin-tools (`nvidia_gpu_tools.py --set-cc-mode=on --reset-after-cc-mode-switch`) for every GPU, "
    "then check each one with `nvidia-smi conf-compute -f -i <index>`.",
)
FIX_CC_READY = (
    "gpu-cc-not-ready",
    "CC mode is on but the GPUs are not set ready, so CUDA refuses work. After the GPU attestation succeeds, set "
    "them ready: `nvidia-smi conf-compute -srs 1` (then `nvidia-smi conf-compute -grs` says ready).",
)


def _gpu_label(g: GpuInfo) -> str:
    return f"GPU {g.index} ({g.name} at {g.bdf})"


# --- gpu.cc_mode -------------------------------------------------------------------------------------------------------


def _status_line(text: str) -> str:
    return _line_with(text, "CC status", "CC State") or _last_line(text)


@check(
    "gpu.cc_mode",
    "Every GPU runs in confidential-computing mode (nvidia-smi conf-compute, per GPU)",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    depends=("gpu.present",),
    timeout=CC_TIMEOUT,
)
async def gpu_cc_mode(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    budget = CC_TIMEOUT * CMD_SHARE
    (gpus, inv_answer, inv_why), f_answer, q_answer = await asyncio.gather(
        inventory(target, budget), smi(target, CC_F, budget), smi(target, CC_Q, budget)
    )
    evidence: list[Evidence] = []
    if f_answer.failure is not None or not f_answer.res.ok:
        evidence.append(ev(ctx, f_answer.why, _cmd(CC_F), target.name))
        code = f_answer.failure.code if f_answer.failure else None
        if code == "no_cc_capable":
            return make(ctx, "fail", f"no CC-capable GPU here: {f_answer.why}", evidence, FIX_CC_OFF)
        if code is not None and code != "no_cc_capable":
            return make(
                ctx, "fail", f"nvidia-smi conf-compute fails: {f_answer.why}", evidence, _nvml_fix(f_answer.failure)
            )
        return make(
            ctx,
            "fail" if not is_not_captured(f_answer.res) else "unknown",
            f"cannot read the CC mode: {f_answer.why}",
            evidence,
            (
                FIX_CC_OFF[0],
                "`nvidia-smi conf-compute -f` needs a driver with confidential-computing support (R535 or newer) on "
                "a CC-capable GPU (Hopper or newer). " + FIX_CC_OFF[1],
            ),
        )
    try:
        summary: CcStatus = parse_status(f_answer.res.stdout)
    except ParseError as e:
        evidence.append(ev(ctx, str(e), _cmd(CC_F), target.name))
        return make(ctx, "unknown", f"unexpected conf-compute -f output: {e}", evidence)
    evidence.append(ev(ctx, _status_line(f_answer.res.stdout), _cmd(CC_F), target.name))
    query: CcQuery | None = None
    if q_answer.failure is None and q_answer.res.ok:
        try:
            query = parse_query(q_answer.res.stdout)
        except ParseError:
            query = None
    if query is not None:
        for key in ("CC State", "Multi-GPU Mode", "CPU CC Capabilities", "GPU CC Capabilities"):
            line = _line_with(q_answer.res.stdout, key)
            if line:
                evidence.append(ev(ctx, line, _cmd(CC_Q), target.name))
    if gpus is None:
        evidence.append(ev(ctx, inv_why or inv_answer.why, _cmd(SMI_INVENTORY), target.name))
        gpus = []
    per_answers = await asyncio.gather(*(smi(target, cc_f_gpu(g.index), budget) for g in gpus))
    per_gpu: dict[int, str | None] = {}
    sources: dict[int, tuple[str, str]] = {}
    for g, answer in zip(gpus, per_answers, strict=True):
        status: CcStatus | None = None
        if answer.failure is None and answer.res.ok:
            try:
                status = parse_status(answer.res.stdout)
            except ParseError:
                status = None
        if status is not None:
            per_gpu[g.index] = "ON" if status.on else "OFF"
            sources[g.index] = (_status_line(answer.res.stdout), _cmd(cc_f_gpu(g.index)))
        elif len(gpus) == 1:  # the summary is this GPU's own state
            per_gpu[g.index] = "ON" if summary.on else "OFF"
            sources[g.index] = (_status_line(f_answer.res.stdout), f"{_cmd(CC_F)} (the only GPU)")
        else:
            per_gpu[g.index] = None
            sources[g.index] = (answer.why, _cmd(cc_f_gpu(g.index)))
    by_index = {g.index: g for g in gpus}
    for index, (observed, source) in sources.items():
        evidence.append(ev(ctx, f"GPU {index} ({by_index[index].bdf}): {observed}", source, target.name))
    off = [i for i, s in per_gpu.items() if s == "OFF"]
    unread = [i for i, s in per_gpu.items() if s is None]
    data: dict[str, Any] = {
        "summary_status": summary.value,
        "per_gpu": {str(i): s for i, s in per_gpu.items()},
        "protected_pcie": bool(query and query.protected_pcie),
        "cc_state": query.cc_state if query else None,
        "gpu_cc_capabilities": query.gpu_cc_capabilities if query else None,
        "cpu_cc_capabilities": query.cpu_cc_capabilities if query else None,
    }
    if query is not None and query.protected_pcie:
        return make(
            ctx,
            "pass",
            f"Protected PCIe mode (multi-GPU CC) on {len(gpus) or 'all'} GPU(s): `CC State` reads {query.cc_state} "
            "in this mode, the GPUs run confidential",
            evidence,
            **data,
        )
    if not gpus and not summary.on:
        return make(ctx, "fail", f"CC mode is off: `{_status_line(f_answer.res.stdout)}`", evidence, FIX_CC_OFF, **data)
    if off:
        named = ", ".join(_gpu_label(by_index[i]) for i in off)
        hint = ""
        if query is not None and query.gpu_capable:
            hint = " (the GPU is CC Capable: the mode is switched off)"
        if query is not None and (query.cpu_cc_capabilities or "").strip().lower() in ("none", ""):
            hint += "; CPU CC Capabilities: None (not a confidential VM)"
        return make(
            ctx,
            "fail",
            f"CC mode is OFF on {named}: `{sources[off[0]][0]}`{hint}",
            evidence,
            FIX_CC_OFF,
            gpus_off=off,
            **data,
        )
    if unread:
        return make(
            ctx,
            "warn",
            f"the summary says CC {summary.value}, but the state of GPU {', '.join(map(str, unread))} could not be "
            "read one by one",
            evidence,
            (FIX_CC_OFF[0], "Run `nvidia-smi conf-compute -f -i <index>` for each GPU; every one must say ON."),
            **data,
        )
    if not summary.on:
        return make(
            ctx,
            "warn",
            f"every GPU says ON one by one, but the summary says `{_status_line(f_answer.res.stdout)}`",
            evidence,
            FIX_CC_OFF,
            **data,
        )
    count = f"all {len(gpus)} GPU(s)" if gpus else "the GPUs"
    return make(ctx, "pass", f"CC mode ON on {count}", evidence, **data)


# --- gpu.cc_ready ------------------------------------------------------------------------------------------------------


@check(
    "gpu.cc_ready",
    "The GPUs are set ready for confidential computing (nvidia-smi conf-compute -grs)",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    depends=("gpu.cc_mode",),
    timeout=GPU_TIMEOUT,
)
async def gpu_cc_ready(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    budget = GPU_TIMEOUT * CMD_SHARE
    answer = await smi(target, CC_GRS, budget)
    evidence: list[Evidence] = []
    ready: bool | None = None
    if answer.failure is None and answer.res.ok:
        try:
            ready = parse_ready(answer.res.stdout)
            evidence.append(ev(ctx, _line_with(answer.res.stdout, "Ready state") or "", _cmd(CC_GRS), target.name))
        except ParseError as e:
            evidence.append(ev(ctx, str(e), _cmd(CC_GRS), target.name))
    else:
        evidence.append(ev(ctx, answer.why, _cmd(CC_GRS), target.name))
    if ready is None:  # older drivers lack -grs; -q has the same fact
        q_answer = await smi(target, CC_Q, budget)
        if q_answer.failure is None and q_answer.res.ok:
            try:
                query = parse_query(q_answer.res.stdout)
            except ParseError:
                query = None
            if query is not None and query.ready_state is not None:
                ready = query.ready
                line = _line_with(q_answer.res.stdout, "Ready State") or query.ready_state
                evidence.append(ev(ctx, line, _cmd(CC_Q), target.name))
    if ready is None:
        faq, text = _nvml_fix(answer.failure) if answer.failure else (FIX_CC_READY[0], FIX_CC_READY[1])
        return make(ctx, "unknown", f"cannot read the GPUs' ready state: {answer.why}", evidence, (faq, text))
    if ready:
        return make(ctx, "pass", "GPUs ready for confidential computing", evidence, ready=True)
    return make(ctx, "fail", f"GPUs not ready: `{evidence[-1].observed}`", evidence, FIX_CC_READY, ready=False)
