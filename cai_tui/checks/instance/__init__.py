"""Instance checks (CAI-3, CAI-5.2): a TDX guest, the GPU, its driver and confidential-computing mode, Docker,
Compose and the CAI container stack.

They run on the ``instance`` target: over SSH, on this machine, or on a captured machine
(:class:`~cai_tui.targets.capture.CaptureTarget`). The commands are those ``scripts/capture-machine.sh`` records,
verbatim, so a capture answers them; files are read through the target first and the recorded command is the fallback
where the target has no files (a capture without ``sysroot/``). Every parse goes through ``cai_tui.parsers``.

One module a topic. Importing the package imports them all, in the order the checks register (doctor runs them in it).
The recorded commands and the CAI stack's names stay importable from here, as before the split.
"""

# isort: off
# Kept in the order the checks register in, so not sorted.
from . import tee, gpu, gpu_cc, docker, containers
# isort: on

from .commands import (
    CC_F,
    CC_GRS,
    CC_Q,
    COMPOSE,
    COMPOSE_V1,
    CPUINFO,
    CPUINFO_CMD,
    DOCKER_CAPTURE,
    DOCKER_JSON,
    DOCKER_PLAIN,
    PROC_VERSION,
    PROC_VERSION_CMD,
    SMI,
    SMI_INVENTORY,
    SYSFS_PCI,
    SYSFS_PCI_CMD,
    TDX_CMD,
    TDX_DEVICES,
    TSM_REPORT,
    cc_f_gpu,
)
from .containers import CAI_PROJECT, CAI_SERVICES, PROJECT_LABEL, SERVICE_LABEL, docker_url_for

__all__ = [
    "CAI_PROJECT",
    "CAI_SERVICES",
    "CC_F",
    "CC_GRS",
    "CC_Q",
    "COMPOSE",
    "COMPOSE_V1",
    "CPUINFO",
    "CPUINFO_CMD",
    "DOCKER_CAPTURE",
    "DOCKER_JSON",
    "DOCKER_PLAIN",
    "PROC_VERSION",
    "PROC_VERSION_CMD",
    "PROJECT_LABEL",
    "SERVICE_LABEL",
    "SMI",
    "SMI_INVENTORY",
    "SYSFS_PCI",
    "SYSFS_PCI_CMD",
    "TDX_CMD",
    "TDX_DEVICES",
    "TSM_REPORT",
    "cc_f_gpu",
    "containers",
    "docker",
    "docker_url_for",
    "gpu",
    "gpu_cc",
    "tee",
]
