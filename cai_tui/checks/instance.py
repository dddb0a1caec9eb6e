"""Instance checks (CAI-3, CAI-5.2): a TDX guest, the GPU, its driver and confidential-computing mode, Docker,
Compose and the CAI container stack.

They run on the ``instance`` target: over SSH, on this machine, or on a captured machine
(:class:`~cai_tui.targets.capture.CaptureTarget`). The commands are those ``scripts/capture-machine.sh`` records,
verbatim, so a capture answers them; files are read through the target first and the recorded command is the fallback
where the target has no files (a capture without ``sysroot/``). Every parse goes through ``cai_tui.parsers``.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..parsers.conf_compute import CcQuery, CcStatus, parse_query, parse_ready, parse_status
from ..parsers.cpuinfo import parse_cpuinfo
from ..parsers.docker_version import DockerVersion, parse_compose_version, parse_docker_version
from ..parsers.errors import ParseError
from ..parsers.nvidia_smi import (
    INVENTORY_QUERY,
    Failure,
    GpuInfo,
    find_failure,
    parse_gpu_inventory,
    parse_plain,
)
from ..parsers.proc_nvidia import NvrmVersion
from ..parsers.proc_nvidia import parse_version as parse_nvrm_version
from ..parsers.sysfs import NVIDIA_VENDOR_ID, PciSysfsDevice, device_from_values, parse_hex_id
from ..targets.base import CommandResult, TargetError
from ..targets.capture import is_not_captured
from .base import CheckContext, Evidence, Result
from .common import ev, make
from .registry import check

if TYPE_CHECKING:
    from ..targets.base import Target

STAGE_INSTANCE = "instance"
STAGE_STACK = "cai-stack"
ROLE = "instance"
GPU_TIMEOUT = 30.0
CC_TIMEOUT = 60.0  # conf-compute once per GPU; slow on 8 GPUs without persistence mode
CMD_SHARE = 0.8  # a command gets this share of its check's budget, so the check can still report

# --- the commands scripts/capture-machine.sh records (tests/checks/test_instance_capture.py keeps them in step) -------
SMI = ("nvidia-smi",)
SMI_INVENTORY = ("nvidia-smi", *INVENTORY_QUERY.split())
CC_F = ("nvidia-smi", "conf-compute", "-f")
CC_Q = ("nvidia-smi", "conf-compute", "-q")
CC_GRS = ("nvidia-smi", "conf-compute", "-grs")
PROC_VERSION = "/proc/driver/nvidia/version"
PROC_VERSION_CMD = ("cat", PROC_VERSION)
SYSFS_PCI = "/sys/bus/pci/devices"
SYSFS_PCI_CMD = (
    "sh",
    "-c",
    'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = 0x10de ] || continue; echo "== $d"; '
    "for f in vendor device class subsystem_vendor subsystem_device numa_node driver_override; do "
    'printf "%s=%s\\n" $f "$(cat $d/$f 2>&1)"; done; echo "driver=$(readlink $d/driver)"; '
    'echo "iommu_group=$(readlink $d/iommu_group)"; done',
)
TDX_DEVICES = ("/dev/tdx_guest", "/dev/tdx-guest")
TSM_REPORT = "/sys/kernel/config/tsm/report"
TDX_CMD = ("sh", "-c", "ls -l /dev/tdx_guest /dev/tdx-guest; ls /sys/kernel/config/tsm; cat /proc/cmdline")
CPUINFO = "/proc/cpuinfo"
CPUINFO_CMD = ("sh", "-c", 'grep -m1 flags /proc/cpuinfo; grep -m1 "model name" /proc/cpuinfo')
DOCKER_JSON = ("docker", "version", "--format", "{{json .}}")
DOCKER_PLAIN = ("docker", "version")
DOCKER_CAPTURE = ("sh", "-c", "docker version; docker compose version")
COMPOSE = ("docker", "compose", "version")
COMPOSE_V1 = ("docker-compose", "version")


def cc_f_gpu(index: int) -> tuple[str, ...]:
    return ("nvidia-smi", "conf-compute", "-f", "-i", str(index))


# --- FAQ ids and fixes -------------------------------------------------------------------------------------------------
FIX_TEE = (
    "tee-not-detected",
    "This is not a TDX guest (or the guest cannot reach its TDX interface). Create the instance as an "
    "ecs.gn8v-tee type with the Confidential AI image (CAI-3); inside it the kernel exposes /dev/tdx_guest (module "
    "tdx_guest: `modprobe tdx_guest`) and configfs-tsm (/sys/kernel/config/tsm/report). Without them the "
    "attestation-agent falls back to the sample attester and Trustee refuses the model key.",
)
FIX_GPU_MISSING = (
    "gpu-missing",
    "No NVIDIA GPU is visible here. Use a gn8v-tee instance type (CAI-3: ecs.gn8v-tee.4xlarge/6xlarge), check that "
    "the instance is the GPU one and is Running; on your own hosts pass the GPU through to the guest.",
)
NVML_FIX = {
    "driver_library_mismatch": "The loaded kernel module and the user-space NVML library are different driver versions: "
    "reboot (or unload and reload the nvidia modules) after a driver update, or reinstall one driver version.",
    "nvml_init_failed": "NVML could not start: load the driver (`modprobe nvidia`), check that /dev/nvidia* exist "
    "and that the GPU is passed through; `dmesg | grep -i nvrm` shows why.",
    "driver_unreachable": "The NVIDIA kernel module is not loaded (or was built for another kernel): `modprobe "
    "nvidia`, reinstall the driver for the running kernel; `dmesg | grep -i nvrm` shows why.",
    "library_not_found": "The driver's user-space part (libnvidia-ml.so) is missing: install the driver's utilities "
    "package matching the kernel module.",
    "device_handle_error": "The driver sees the GPU but cannot initialise it (passthrough, firmware or CC-mode "
    "problem): `dmesg | grep -i nvrm` shows the reason.",
    "not_found": "nvidia-smi is not installed: install the NVIDIA driver (kernel module and utilities). The "
    "Confidential AI image ships it; another image needs the driver installed.",
    "no_devices": "The driver is loaded but sees no GPU: the GPU is not passed through or is bound to another "
    "driver (`lspci -nnk -d 10de:`).",
}
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
FIX_DOCKER = "docker-too-old"
FIX_COMPOSE = "compose-too-old"
FIX_STACK = "cai-container-unhealthy"

DOCKER_MIN = "19.03"  # the seeds ask for Docker newer than 19.03
COMPOSE_INCLUDE = "2.20"  # top-level `include:` (CAI-5.4)

# --- small helpers -----------------------------------------------------------------------------------------------------


def _cmd(argv: Sequence[str]) -> str:
    return shlex.join(argv)


def _output(res: CommandResult) -> str:
    """stdout and stderr together (how a capture records them, how nvidia-smi failures are recognised)."""
    if res.stdout and res.stderr:
        return res.stdout + ("" if res.stdout.endswith("\n") else "\n") + res.stderr
    return res.stdout or res.stderr


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "(no output)"


def _line_with(text: str, *needles: str) -> str | None:
    for line in text.splitlines():
        if any(n.lower() in line.lower() for n in needles):
            return line.strip()
    return None


async def _run(target: Target, argv: Sequence[str], timeout: float) -> CommandResult:
    return await target.run(list(argv), timeout=timeout)


async def _try_run(target: Target, argv: Sequence[str], timeout: float) -> CommandResult | None:
    """A fallback command: None where the target cannot run commands (a mounted rootfs) or did not capture it."""
    try:
        res = await _run(target, argv, timeout)
    except TargetError:
        return None
    return None if is_not_captured(res) else res


async def run_first(target: Target, argvs: Sequence[Sequence[str]], timeout: float) -> CommandResult:
    """The first of ``argvs`` that the target answers; later ones only matter on a capture that lacks the earlier."""
    res: CommandResult | None = None
    for argv in argvs:
        res = await _run(target, argv, timeout)
        if not is_not_captured(res):
            return res
    assert res is not None
    return res


async def read_fact(target: Target, path: str, argv: Sequence[str], timeout: float) -> tuple[str | None, str]:
    """A file's text through the target, or the recorded command's output where the target has no files.

    Returns ``(text or None when absent/unreadable, where it came from)``.
    """
    try:
        data = await target.read_file(path, max_bytes=1 << 20)
        return data.decode("utf-8", "replace"), path
    except FileNotFoundError:
        return None, path
    except TargetError:
        pass
    except OSError:
        return None, path
    res = await _try_run(target, argv, timeout)
    return (res.stdout if res is not None and res.ok and res.stdout.strip() else None), _cmd(argv)


@dataclass
class SmiAnswer:
    res: CommandResult
    failure: Failure | None  # the classic failure recognised in the output

    @property
    def text(self) -> str:
        return _output(self.res)

    @property
    def why(self) -> str:
        """One line saying how the command failed."""
        if self.failure is not None:
            return self.failure.line.strip()
        if is_not_captured(self.res):
            return self.res.stderr.strip()
        return f"exit {self.res.rc}: {_last_line(self.text)}"


async def smi(target: Target, argv: Sequence[str], timeout: float) -> SmiAnswer:
    res = await _run(target, argv, timeout)
    failure = find_failure(_output(res))
    if failure is not None and failure.code == "not_found" and res.rc == 0:
        failure = None  # "not found" inside a successful output is data, not the command missing
    return SmiAnswer(res, failure)


def _nvml_fix(failure: Failure | None) -> tuple[str, str]:
    code = failure.code if failure is not None else ""
    text = NVML_FIX.get(code) or (
        "nvidia-smi does not work here: run it by hand and look at `dmesg | grep -i nvrm`; reinstall the driver if "
        "the kernel module and the utilities do not match."
    )
    if code == "no_devices":
        return FIX_GPU_MISSING[0], text
    return "nvml-init-failed", text


def _gpu_label(g: GpuInfo) -> str:
    return f"GPU {g.index} ({g.name} at {g.bdf})"


async def inventory(target: Target, timeout: float) -> tuple[list[GpuInfo] | None, SmiAnswer, str | None]:
    """GPUs from the CSV inventory query; ``(None, answer, why)`` when nvidia-smi does not give them."""
    answer = await smi(target, SMI_INVENTORY, timeout)
    if answer.failure is not None or not answer.res.ok:
        return None, answer, answer.why
    try:
        gpus = parse_gpu_inventory(answer.res.stdout)
    except ParseError as e:
        return None, answer, str(e)
    if not gpus:
        return None, answer, "nvidia-smi listed no GPU"
    return gpus, answer, None


# --- sysfs -------------------------------------------------------------------------------------------------------------


def parse_sysfs_pci_listing(text: str) -> list[PciSysfsDevice]:
    """Output of :data:`SYSFS_PCI_CMD` (``== /sys/bus/pci/devices/<bdf>`` then ``key=value`` lines) → devices."""
    blocks: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("== "):
            bdf = line[3:].strip().rstrip("/").rsplit("/", 1)[-1]
            current = blocks.setdefault(bdf, {})
            continue
        if current is None or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if value.startswith(("cat:", "readlink:")):
            continue  # the file is not there (e.g. no driver_override on old kernels)
        current[key.strip()] = value
    devices = []
    for bdf, values in blocks.items():
        try:
            devices.append(device_from_values(bdf, values))
        except ParseError:
            continue
    return devices


async def _sysfs_device(target: Target, base: str, bdf: str) -> PciSysfsDevice | None:
    values: dict[str, str] = {}
    for name in ("vendor", "device", "class", "driver_override", "numa_node"):
        try:
            values[name] = (await target.read_file(f"{base}/{name}", max_bytes=4096)).decode("ascii", "replace")
        except OSError:
            if name in ("vendor", "device", "class"):
                return None
    for link in ("driver", "iommu_group"):
        try:
            values[link] = await target.readlink(f"{base}/{link}") or ""
        except OSError:
            values[link] = ""
    try:
        return device_from_values(bdf, values)
    except ParseError:
        return None


async def sysfs_nvidia_gpus(target: Target, timeout: float) -> tuple[list[PciSysfsDevice] | None, str]:
    """NVIDIA display-class devices from sysfs: ``(devices, source)``, ``(None, why)`` when sysfs cannot be read."""
    entries: list[str] | None = None
    try:
        entries = await target.listdir(SYSFS_PCI)
    except (TargetError, FileNotFoundError):  # no files here: the recorded command may have the listing
        res = await _try_run(target, SYSFS_PCI_CMD, timeout)
        if res is None or res.rc == 127:
            return None, f"{SYSFS_PCI}: not readable on this target, and `{_cmd(SYSFS_PCI_CMD)}` not available"
        return [d for d in parse_sysfs_pci_listing(res.stdout) if d.is_nvidia and d.is_gpu], _cmd(SYSFS_PCI_CMD)
    except OSError as e:
        return None, f"{SYSFS_PCI}: {e.strerror or e}"
    found: list[PciSysfsDevice] = []
    for bdf in entries:
        base = f"{SYSFS_PCI}/{bdf}"
        try:
            vendor = parse_hex_id((await target.read_file(f"{base}/vendor", max_bytes=64)).decode("ascii", "replace"))
        except (OSError, ParseError):
            continue
        if vendor != NVIDIA_VENDOR_ID:
            continue
        device = await _sysfs_device(target, base, bdf)
        if device is not None and device.is_gpu:
            found.append(device)
    return sorted(found, key=lambda d: d.bdf), f"{SYSFS_PCI}/*/vendor"


def _sysfs_line(d: PciSysfsDevice) -> str:
    return (
        f"{d.bdf} vendor=0x{d.vendor_id:04x} device=0x{d.device_id:04x} class=0x{d.class_code:06x} "
        f"({d.class_name}) driver={d.driver or '(none)'}"
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


# --- docker.version ----------------------------------------------------------------------------------------------------


def _docker_part(text: str) -> str:
    """The ``docker version`` part of :data:`DOCKER_CAPTURE`'s output (the compose line(s) cut off)."""
    out = []
    for line in text.splitlines():
        if line.strip().lower().startswith(("docker compose version", "docker-compose version")):
            break
        out.append(line)
    lines = out
    # the compose command's own failure follows a docker version that worked ("'compose' is not a docker command")
    while lines and (
        "compose" in lines[-1].lower() and ("not a docker command" in lines[-1] or "unknown" in lines[-1])
    ):
        lines.pop()
    return "\n".join(lines)


def _parse_docker(text: str, res: CommandResult) -> DockerVersion:
    """stdout and stderr together (the daemon error is on stderr); stdout alone when stderr holds other chatter."""
    try:
        return parse_docker_version(text)
    except ParseError:
        if res.stderr.strip() and res.stdout.strip() and text != res.stdout:
            return parse_docker_version(res.stdout)
        raise


@check(
    "docker.version",
    f"Docker Engine is newer than {DOCKER_MIN} and its daemon answers",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def docker_version(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    res = await run_first(target, (DOCKER_JSON, DOCKER_PLAIN, DOCKER_CAPTURE), GPU_TIMEOUT * CMD_SHARE)
    source = _cmd(res.argv)
    text = _output(res)
    if tuple(res.argv) == DOCKER_CAPTURE:
        text = _docker_part(text)
    if is_not_captured(res):
        return make(
            ctx, "unknown", f"Docker was not captured: {res.stderr.strip()}", [ev(ctx, res.stderr, source, target.name)]
        )
    try:
        version: DockerVersion = _parse_docker(text, res)
    except ParseError as e:
        observed = e.line.strip() if e.line else _last_line(text)
        evidence = [ev(ctx, observed, source, target.name)]
        if "not installed" in e.message or res.rc == 127:
            return make(
                ctx,
                "fail",
                f"Docker is not installed: `{observed}`",
                evidence,
                (
                    FIX_DOCKER,
                    "Install Docker Engine (newer than 19.03) with the Compose v2 plugin; the Confidential AI image "
                    "ships both. On Alibaba Cloud Linux: `dnf install docker-ce docker-compose-plugin`, then "
                    "`systemctl enable --now docker`.",
                ),
            )
        return make(ctx, "unknown", f"unexpected `{source}` output: {e}", evidence)
    evidence = []
    if version.client_version:
        evidence.append(ev(ctx, f"Client Version: {version.client_version}", source, target.name))
    data: dict[str, Any] = {
        "client_version": version.client_version,
        "server_version": version.server_version,
        "server_api_version": version.server_api_version,
    }
    if version.server_version is None:
        why = version.server_error or "no Server part in the output"
        evidence.append(ev(ctx, why, source, target.name))
        return make(
            ctx,
            "fail",
            f"the Docker daemon does not answer: {why}",
            evidence,
            (
                FIX_DOCKER,
                "Start the daemon (`systemctl enable --now docker`) and run as root or a member of the docker group; "
                "`journalctl -u docker` says why it does not start.",
            ),
            **data,
        )
    evidence.append(ev(ctx, f"Server Version: {version.server_version}", source, target.name))
    if not version.newer_than(DOCKER_MIN):
        return make(
            ctx,
            "fail",
            f"Docker Engine {version.server_version} is not newer than {DOCKER_MIN}",
            evidence,
            (
                FIX_DOCKER,
                f"Upgrade Docker Engine to a version newer than {DOCKER_MIN} (GPU containers with `--gpus` and the "
                "CAI compose stack need it): `dnf upgrade docker-ce` / `apt-get install docker-ce`.",
            ),
            **data,
        )
    api = f" (API {version.server_api_version})" if version.server_api_version else ""
    return make(ctx, "pass", f"Docker Engine {version.server_version}{api}", evidence, **data)


# --- docker.compose ----------------------------------------------------------------------------------------------------


def _compose_line(text: str) -> str | None:
    for line in text.splitlines():
        if line.strip().lower().startswith(("docker compose version", "docker-compose version")):
            return line.strip()
    return None


@check(
    "docker.compose",
    f"Docker Compose v2 (≥ {COMPOSE_INCLUDE}, with `include:`) is installed as `docker compose`",
    stage=STAGE_INSTANCE,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def docker_compose(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    budget = GPU_TIMEOUT * CMD_SHARE
    res = await run_first(target, (COMPOSE, DOCKER_CAPTURE), budget)
    text = _output(res)
    line = _compose_line(text) if tuple(res.argv) == DOCKER_CAPTURE else (text.strip() if res.ok else None)
    source = _cmd(res.argv)
    evidence = [ev(ctx, line or _last_line(text), source, target.name)]
    if line:
        try:
            compose = parse_compose_version(line)
        except ParseError as e:
            return make(ctx, "unknown", f"unexpected `{source}` output: {e}", evidence)
        data: dict[str, Any] = {"version": compose.version, "v1": compose.v1, "plugin": True}
        if compose.supports_include:
            return make(ctx, "pass", f"Docker Compose {compose.version} (`include:` supported)", evidence, **data)
        return make(
            ctx,
            "fail",
            f"Docker Compose {compose.version} predates top-level `include:` (Compose {COMPOSE_INCLUDE}), which the "
            "seed's ~/docker-compose.yml uses (CAI-5.4)",
            evidence,
            (
                FIX_COMPOSE,
                f"Upgrade the Compose plugin to {COMPOSE_INCLUDE} or newer (`dnf install docker-compose-plugin` / "
                "`apt-get install docker-compose-plugin`, or put a current docker-compose binary in "
                "/usr/local/lib/docker/cli-plugins/).",
            ),
            **data,
        )
    v1 = await _run(target, COMPOSE_V1, budget)
    v1_text = _output(v1)
    if v1.ok and _compose_line(v1_text):
        v1_line = _compose_line(v1_text) or ""
        evidence.append(ev(ctx, v1_line, _cmd(COMPOSE_V1), target.name))
        try:
            compose = parse_compose_version(v1_text)
        except ParseError as e:
            return make(ctx, "unknown", f"unexpected `{_cmd(COMPOSE_V1)}` output: {e}", evidence)
        data = {"version": compose.version, "v1": compose.v1, "plugin": False}
        if compose.v1:
            return make(
                ctx,
                "fail",
                f"only the retired Compose v1 is installed (`{v1_line}`): it has no top-level `include:` (CAI-5.4) "
                "and no `up --wait` (CAI-5.2), and the seed runs `docker compose`, the v2 plugin",
                evidence,
                (
                    FIX_COMPOSE,
                    "Install the Compose v2 plugin (`dnf install docker-compose-plugin` / `apt-get install "
                    "docker-compose-plugin`); Compose v1 (Python docker-compose 1.x) is end-of-life and names "
                    "containers differently (cai-docker_oss_1).",
                ),
                **data,
            )
        return make(
            ctx,
            "warn",
            f"Compose {compose.version} is installed only as the standalone `docker-compose`; the seed runs "
            "`docker compose`",
            evidence,
            (
                FIX_COMPOSE,
                "Make it a CLI plugin: `mkdir -p /usr/local/lib/docker/cli-plugins && ln -s $(command -v "
                "docker-compose) /usr/local/lib/docker/cli-plugins/docker-compose`, or install docker-compose-plugin.",
            ),
            **data,
        )
    if not is_not_captured(v1):
        evidence.append(ev(ctx, _last_line(v1_text), _cmd(COMPOSE_V1), target.name))
    return make(
        ctx,
        "fail",
        f"Docker Compose is not installed: `{_last_line(text)}`",
        evidence,
        (
            FIX_COMPOSE,
            f"Install the Compose v2 plugin ({COMPOSE_INCLUDE} or newer): `dnf install docker-compose-plugin` / "
            "`apt-get install docker-compose-plugin`; the Confidential AI image ships it.",
        ),
    )


# --- cai.containers ----------------------------------------------------------------------------------------------------

CAI_PROJECT = "cai-docker"
CAI_SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs")
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
LOG_TAIL = 5
SERVICE_HINTS = {  # the seed's FAQ (CAI-F1..F4) and failure-catalog.md
    "oss": "oss fails when the instance cannot reach the bucket: check the bucket policy for the instance's IP "
    "(CAI-4.1), MODEL_OSS_ENDPOINT and the AccessKey (CAI-F1).",
    "confidential-data-hub": "confidential-data-hub fails when the model key cannot be fetched: check MODEL_KEY_ID, "
    "TRUSTEE_URL and the Trustee ACL (CAI-F2).",
    "tng": "tng fails when the instance cannot reach Trustee: check TRUSTEE_URL and the Trustee ACL (CAI-F3).",
    "cachefs": "cachefs fails when the model cannot be decrypted: check the secret stored in KMS/Trustee and that "
    "MODEL_ENCRYPTION_METHOD matches how the model was encrypted (CAI-F4).",
    "attestation-agent": "attestation-agent needs /dev/tdx_guest: run on a gn8v-tee instance with the Confidential AI "
    "image (see host.tdx_guest).",
}


@dataclass
class ContainerFacts:
    name: str
    project: str
    service: str
    status: str  # running, exited, restarting, created, paused, dead
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    exit_code: int | None
    health_output: str | None = None
    logs: list[str] = field(default_factory=list)

    @property
    def state(self) -> str:
        if self.status == "exited":
            return f"exited ({self.exit_code})"
        return f"{self.status}, {self.health}" if self.health else self.status

    @property
    def bad(self) -> bool:
        return self.status != "running" or self.health == "unhealthy"


def docker_url_for(target: Target) -> tuple[str | None, str | None]:
    """The Docker engine URL of the machine ``target`` stands for: ``(url, None)``, ``(None, None)`` for this
    machine's default engine (DOCKER_HOST or the local socket), ``(None, why)`` when there is none to ask."""
    from ..targets.local import LocalTarget

    if isinstance(target, LocalTarget):
        return None, None
    if target.name.startswith("ssh://"):
        return target.name, None
    url = getattr(target, "docker_url", None)
    if target.name.startswith("docker://"):
        return (url if isinstance(url, str) else None), None
    return None, f"{target.name} has no Docker engine to ask (a capture or a mounted rootfs)"


def _inspect_stack(url: str | None, timeout: float) -> list[ContainerFacts]:
    import docker

    client = (
        docker.DockerClient(base_url=url, timeout=int(max(1, timeout)))
        if url
        else docker.from_env(timeout=int(max(1, timeout)))
    )
    try:
        found: list[ContainerFacts] = []
        for c in client.containers.list(all=True, filters={"label": SERVICE_LABEL}):
            labels = c.labels or {}
            service = labels.get(SERVICE_LABEL, "")
            if service not in CAI_SERVICES:
                continue
            state = c.attrs.get("State") or {}
            health = state.get("Health") or {}
            log = health.get("Log") or []
            facts = ContainerFacts(
                name=c.name,
                project=labels.get(PROJECT_LABEL, ""),
                service=service,
                status=str(state.get("Status") or c.status),
                health=health.get("Status") or None,
                exit_code=state.get("ExitCode"),
                health_output=str(log[-1].get("Output", "")).strip() if log else None,
            )
            if facts.bad:
                raw = c.logs(tail=LOG_TAIL, stdout=True, stderr=True)
                facts.logs = [ln for ln in raw.decode("utf-8", "replace").splitlines() if ln.strip()]
            found.append(facts)
        return found
    finally:
        client.close()


def _pick_project(found: list[ContainerFacts]) -> str:
    projects: dict[str, set[str]] = {}
    for f in found:
        projects.setdefault(f.project, set()).add(f.service)
    if CAI_PROJECT in projects:
        return CAI_PROJECT
    return sorted(projects, key=lambda p: (-len(projects[p]), p))[0]


@check(
    "cai.containers",
    "The CAI stack's containers (oss, attestation-agent, tng, confidential-data-hub, cachefs) are up and healthy",
    stage=STAGE_STACK,
    runs_on=ROLE,
    timeout=GPU_TIMEOUT,
)
async def cai_containers(ctx: CheckContext) -> Result:
    target = ctx.target(ROLE)
    assert target is not None
    url, why_not = docker_url_for(target)
    if why_not is not None:
        return make(ctx, "skip", f"needs a live Docker engine: {why_not}")
    engine = url or "the local Docker engine (DOCKER_HOST or /var/run/docker.sock)"
    try:
        found = await asyncio.to_thread(_inspect_stack, url, GPU_TIMEOUT * CMD_SHARE)
    except Exception as e:  # docker.errors.DockerException, paramiko's and requests' errors: all say why
        text = str(e).strip() or type(e).__name__
        return make(
            ctx,
            "unknown",
            f"cannot ask {engine}: {text}",
            [ev(ctx, text, f"docker ps ({engine})", target.name)],
            (
                FIX_DOCKER,
                "Check that the Docker daemon runs on the instance (docker.version) and that this user may use it.",
            ),
        )
    source = f"docker ps -a --filter label={SERVICE_LABEL} ({engine})"
    if not found:
        return make(
            ctx,
            "fail",
            f"no CAI container on {engine}: none is labelled {SERVICE_LABEL} = {', '.join(CAI_SERVICES)}",
            [ev(ctx, "no matching container", source, target.name)],
            (
                FIX_STACK,
                "Start the stack (CAI-5.2): `docker compose -f /opt/alibaba/cai-docker/docker-compose.yml --env-file "
                "~/cai.env up -d --wait`.",
            ),
            services={},
        )
    project = _pick_project(found)
    mine = sorted((f for f in found if f.project == project), key=lambda f: (CAI_SERVICES.index(f.service), f.name))
    evidence: list[Evidence] = []
    services: dict[str, list[dict[str, Any]]] = {}
    for f in mine:
        services.setdefault(f.service, []).append(
            {"name": f.name, "status": f.status, "health": f.health, "exit_code": f.exit_code}
        )
        evidence.append(ev(ctx, f"{f.name}: {f.state}", f"docker inspect {f.name}", target.name))
        if f.bad and f.health_output:
            evidence.append(ev(ctx, f.health_output, f"docker inspect {f.name} (last healthcheck)", target.name))
        if f.bad and f.logs:
            evidence.append(ev(ctx, "\n".join(f.logs), f"docker logs --tail {LOG_TAIL} {f.name}", target.name))
    others = sorted({f.project for f in found} - {project})
    if others:
        evidence.append(ev(ctx, f"CAI containers also in project(s) {', '.join(others)}", source, target.name))
    missing = [s for s in CAI_SERVICES if s not in services]
    bad = [f for f in mine if f.bad]
    starting = [f for f in mine if not f.bad and f.health == "starting"]
    data: dict[str, Any] = {"project": project, "services": services, "missing": missing}
    if bad or missing:
        parts = [f"{f.service} {f.state}" for f in bad] + [f"{s} not created" for s in missing]
        hints = " ".join(SERVICE_HINTS[s] for s in dict.fromkeys([f.service for f in bad] + missing))
        first = bad[0].name if bad else f"{project}-{missing[0]}-1"
        return make(
            ctx,
            "fail",
            f"project {project}: {', '.join(parts)}",
            evidence,
            (
                FIX_STACK,
                f"Read the failing container's log (`docker logs {first}`) and run `cai-tui troubleshoot`, which "
                f"matches it against the known failures. {hints} After fixing, `docker compose -f "
                "/opt/alibaba/cai-docker/docker-compose.yml --env-file ~/cai.env up -d --wait`.",
            ),
            **data,
        )
    if starting:
        return make(
            ctx,
            "warn",
            f"project {project}: {', '.join(f.service for f in starting)} still starting (health: starting)",
            evidence,
            (FIX_STACK, "Wait for the healthchecks (`docker compose ... up -d --wait` waits), then check again."),
            **data,
        )
    return make(
        ctx,
        "pass",
        f"project {project}: all {len(CAI_SERVICES)} services up ("
        + ", ".join(f"{s} {services[s][0]['health'] or services[s][0]['status']}" for s in CAI_SERVICES)
        + ")",
        evidence,
        **data,
    )
