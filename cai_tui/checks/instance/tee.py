"""host.tdx_guest: /dev/tdx_guest, configfs-tsm and the cpuinfo flag."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...parsers.cpuinfo import parse_cpuinfo
from ...parsers.errors import ParseError
from ...targets.base import TargetError
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import CMD_SHARE, GPU_TIMEOUT, ROLE, STAGE_INSTANCE, _cmd, _line_with, _output, _try_run, read_fact
from .commands import CPUINFO, CPUINFO_CMD, TDX_CMD, TDX_DEVICES, TSM_REPORT

if TYPE_CHECKING:
    from ...targets.base import Target

FIX_TEE = (
    "tee-not-detected",
    "This is not a TDX guest (or the guest cannot reach its TDX interface). Create the instance as an "
    "ecs.gn8v-tee type with the Confidential AI image (CAI-3); inside it the kernel exposes /dev/tdx_guest (module "
    "tdx_guest: `modprobe tdx_guest`) and configfs-tsm (/sys/kernel/config/tsm/report). Without them the "
    "attestation-agent falls back to the sample attester and Trustee refuses the model key.",
)


# --- host.tdx_guest ----------------------------------------------------------------------------------------------------


@dataclass
class TdxFacts:
    devices: dict[str, bool | None] = field(default_factory=dict)
    tsm: bool | None = None
    cpu_flag: bool | None = None
    evidence: list[tuple[str, str]] = field(default_factory=list)  # (observed, source)


def _ls_facts(text: str, facts: TdxFacts) -> None:
    """The output of :data:`TDX_CMD`: ``ls -l`` lines or ``cannot access`` errors, the tsm listing."""
    lines = [ln.rstrip() for ln in text.splitlines()]
    source = _cmd(TDX_CMD)
    for path in TDX_DEVICES:
        for line in lines:
            if f"'{path}'" in line and "cannot access" in line:
                facts.devices[path] = False
                facts.evidence.append((line, source))
                break
            if line.endswith(f" {path}") and not line.startswith("ls:"):
                facts.devices[path] = True
                facts.evidence.append((line, source))
                break
    tsm_dir = TSM_REPORT.rsplit("/", 1)[0]
    missing = next((ln for ln in lines if f"'{tsm_dir}'" in ln and "cannot access" in ln), None)
    if missing is not None:
        facts.tsm = False
        facts.evidence.append((missing, source))
    elif "report" in (ln.strip() for ln in lines):
        facts.tsm = True
        facts.evidence.append((f"{tsm_dir}: report", source))


async def tdx_facts(target: Target, timeout: float) -> TdxFacts:
    facts = TdxFacts()
    try:
        for path in (*TDX_DEVICES, TSM_REPORT):
            present = await target.exists(path)
            if path == TSM_REPORT:
                facts.tsm = present
            else:
                facts.devices[path] = present
            facts.evidence.append((f"{path}: {'present' if present else 'absent'}", path))
    except TargetError:
        facts.devices.clear()
        facts.evidence.clear()
        facts.tsm = None
        res = await _try_run(target, TDX_CMD, timeout)
        if res is not None:
            _ls_facts(_output(res), facts)
    text, source = await read_fact(target, CPUINFO, CPUINFO_CMD, timeout)
    if text is not None:
        try:
            info = parse_cpuinfo(text)
        except ParseError as e:
            facts.evidence.append((str(e), source))
        else:
            facts.cpu_flag = info.tdx_guest
            flags_line = _line_with(text, "flags") or " ".join(sorted(info.flags))
            facts.evidence.append((flags_line, source))
    return facts


@check(
    "host.tdx_guest",
    "The instance is a TDX guest (/dev/tdx_guest, configfs-tsm, cpuinfo flag tdx_guest)",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def host_tdx_guest(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    facts = await tdx_facts(target, GPU_TIMEOUT * CMD_SHARE)
    evidence = [ev(ctx, observed, source, target.name) for observed, source in facts.evidence]
    present = [p for p, ok in facts.devices.items() if ok]
    interface = present + ([TSM_REPORT] if facts.tsm else [])
    data: dict[str, Any] = {"devices": facts.devices, "tsm_report": facts.tsm, "cpu_flag_tdx_guest": facts.cpu_flag}
    looked = f"{' / '.join(TDX_DEVICES)}, {TSM_REPORT}, the cpuinfo flag tdx_guest"
    if interface:
        flag = {True: "; cpuinfo flag tdx_guest", False: "; cpuinfo lacks the tdx_guest flag", None: ""}[facts.cpu_flag]
        return make(ctx, "pass", f"TDX guest: {', '.join(interface)}{flag}", evidence, **data)
    nothing_known = not facts.devices and facts.tsm is None and facts.cpu_flag is None
    if nothing_known:
        return make(
            ctx,
            "unknown",
            f"cannot tell whether this is a TDX guest: {target.name} answered none of {looked}",
            evidence,
            **data,
        )
    if facts.cpu_flag:
        return make(
            ctx,
            "fail",
            f"a TD guest (cpuinfo flag tdx_guest) without its attestation interface: no {' / '.join(TDX_DEVICES)}, "
            f"no {TSM_REPORT}",
            evidence,
            FIX_TEE,
            **data,
        )
    return make(ctx, "fail", f"not a TDX guest: looked for {looked}; none found", evidence, FIX_TEE, **data)
