"""Helpers the instance checks share: running the recorded commands, nvidia-smi answers, FAQ fixes."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...parsers.errors import ParseError
from ...parsers.nvidia_smi import Failure, GpuInfo, find_failure, parse_gpu_inventory
from ...targets.base import CommandResult, TargetError
from ...targets.capture import is_not_captured
from .commands import SMI_INVENTORY

if TYPE_CHECKING:
    from ...targets.base import Target

STAGE_INSTANCE = "instance"
STAGE_STACK = "cai-stack"
ROLE = "instance"
GPU_TIMEOUT = 30.0
CC_TIMEOUT = 60.0  # conf-compute once per GPU; slow on 8 GPUs without persistence mode
CMD_SHARE = 0.8  # a command gets this share of its check's budget, so the check can still report

# --- FAQ ids and fixes more than one check gives ---------------------------------------------------------------------
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
FIX_DOCKER = "docker-too-old"


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
