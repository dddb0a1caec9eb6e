"""The kata lab's kata configuration file: kata-containers' own template, rendered the way its build renders it.

Origin: ``configuration-qemu-3.24.0.toml.in`` beside this module is kata-containers 3.24.0
``src/runtime/config/configuration-qemu.toml.in``, byte for byte (``git show 3.24.0:src/runtime/config/
configuration-qemu.toml.in``). Its ``@VARS@`` are filled with :data:`PLACEHOLDERS`: the values of an arm64 kata-deploy
build (``PREFIX=/opt/kata``, the Makefile's defaults), read off the rendered 3.24.0 file in
``tests/fixtures/parsers/kata-configuration-qemu-3.24.toml`` line by line against the template — with one lab
choice: ``@KERNELPARAMS@`` holds the virtCCA guest's parameters (``virtcca_cvm_guest=1 swiotlb=262144,force``, as
openEuler's virtCCA_sdk confidential-container documents), since the procedure edits a kata-virtcca configuration.
Everything else is as shipped, ``guest_hook_path = ""`` (3.24+: hooks off) included — the KATA-1.8 doer's work.

The kata runtime itself does not run in the lab (runc stands in, see :mod:`cai_tui.lab.kata.not_real`), so nothing
here reads the file but cai-tui: the lab points ``KATA_CONF_FILE`` and ``kata.config_path`` at it (:func:`lab_env`).
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

TEMPLATE = "configuration-qemu-3.24.0.toml.in"
KATA_VERSION = "3.24.0"
VIRTCCA_KERNEL_PARAMS = "virtcca_cvm_guest=1 swiotlb=262144,force"

PLACEHOLDERS: dict[str, str] = {
    "CONFIG_QEMU_IN": "config/configuration-qemu.toml.in",
    "CPUFEATURES": "",
    "DEFAULTEXPFEATURES": "[]",
    "DEFBINDMOUNTS": "[]",
    "DEFBLOCKDEVICEAIO_QEMU": "io_uring",
    "DEFBLOCKSTORAGEDRIVER_QEMU": "virtio-scsi",
    "DEFBRIDGES": "1",
    "DEFCREATECONTAINERTIMEOUT": "60",
    "DEFDANCONF": "/run/kata-containers/dans",
    "DEFDISABLEBLOCK": "false",
    "DEFDISABLEGUESTEMPTYDIR": "false",
    "DEFDISABLEGUESTSECCOMP": "true",
    "DEFDISABLEGUESTSELINUX": "true",
    "DEFDISABLEIMAGENVDIMM": "false",
    "DEFDISABLESELINUX": "false",
    "DEFENABLEANNOTATIONS": '["enable_iommu", "virtio_fs_extra_args", "kernel_params"]',
    "DEFENABLEIOTHREADS": "false",
    "DEFENABLEVHOSTUSERSTORE": "false",
    "DEFENTROPYSOURCE": "/dev/urandom",
    "DEFFILEMEMBACKEND": "",
    "DEFGUESTSELINUXLABEL": "",
    "DEFINDEPIOTHREADS": "0",
    "DEFMAXMEMSZ": "0",
    "DEFMAXVCPUS": "0",
    "DEFMEMSLOTS": "10",
    "DEFMEMSZ": "2048",
    "DEFMSIZE9P": "8192",
    "DEFNETWORKMODEL_QEMU": "tcfilter",
    "DEFPODRESOURCEAPISOCK": "",
    "DEFROOTFSTYPE": '"ext4"',
    "DEFSANDBOXCGROUPONLY": "false",
    "DEFSECCOMPSANDBOXPARAM": "",
    "DEFSHAREDFS_QEMU_VIRTIOFS": "virtio-fs",
    "DEFSTATICRESOURCEMGMT": "false",
    "DEFVALIDENTROPYSOURCES": '["/dev/urandom","/dev/random",""]',
    "DEFVALIDFILEMEMBACKENDS": '[""]',
    "DEFVALIDVHOSTUSERSTOREPATHS": '["/var/run/kata-containers/vhost-user"]',
    "DEFVALIDVIRTIOFSDAEMONPATHS": '["/opt/kata/libexec/virtiofsd"]',
    "DEFVCPUS": "1",
    "DEFVFIOMODE": "guest-kernel",
    "DEFVHOSTUSERSTOREPATH": "/var/run/kata-containers/vhost-user",
    "DEFVIRTIOFSCACHE": "auto",
    "DEFVIRTIOFSCACHESIZE": "0",
    "DEFVIRTIOFSDAEMON": "/opt/kata/libexec/virtiofsd",
    "DEFVIRTIOFSEXTRAARGS": '["--thread-pool-size=1", "--announce-submounts"]',
    "DEFVIRTIOFSQUEUESIZE": "1024",
    "FIRMWAREPATH": "",
    "FIRMWAREVOLUMEPATH": "",
    "IMAGEPATH": "/opt/kata/share/kata-containers/kata-containers.img",
    "KERNELPARAMS": VIRTCCA_KERNEL_PARAMS,
    "KERNELPATH": "/opt/kata/share/kata-containers/vmlinux.container",
    "MACHINEACCELERATORS": "",
    "MACHINETYPE": "virt",
    "PROJECT_NAME": "Kata Containers",
    "PROJECT_TYPE": "kata",
    "QEMUPATH": "/opt/kata/bin/qemu-system-aarch64",
    "QEMUVALIDHYPERVISORPATHS": '["/opt/kata/bin/qemu-system-aarch64"]',
}

_VAR = re.compile(r"@([A-Z_0-9]+)@")


def template_text() -> str:
    """kata-containers 3.24.0's configuration-qemu.toml.in, as upstream has it."""
    return (resources.files(__package__) / TEMPLATE).read_text(encoding="utf-8")


def render(values: dict[str, str] | None = None) -> str:
    """The template with its ``@VARS@`` filled (:data:`PLACEHOLDERS`, overridden by ``values``); KeyError naming a
    variable with no value."""
    fill = {**PLACEHOLDERS, **(values or {})}

    def sub(m: re.Match[str]) -> str:
        if m.group(1) not in fill:
            raise KeyError(f"{TEMPLATE}: no value for @{m.group(1)}@")
        return fill[m.group(1)]

    return _VAR.sub(sub, template_text())


def write_kata_config(directory: str | os.PathLike[str], *, name: str = "configuration.toml") -> Path:
    """Write the lab's kata configuration (kata 3.24.0's qemu template, arm64 kata-deploy values, the virtCCA kernel
    parameters, ``guest_hook_path = ""`` as shipped) into ``directory``; returns its path."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path


def lab_env(path: str | os.PathLike[str]) -> dict[str, str]:
    """The environment that makes ``path`` the configuration in effect (for the kata.config check and the doer);
    the recipe's ``kata.config_path`` should name the same file."""
    return {"KATA_CONF_FILE": os.fspath(path)}


__all__ = ["KATA_VERSION", "PLACEHOLDERS", "lab_env", "render", "template_text", "write_kata_config"]
