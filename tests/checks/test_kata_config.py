"""kata.config (the configuration file in effect and its guest_hook_path) and kata.hook (the OCI hook inside the guest
rootfs) on sysroot trees: a host with kata's configuration files where the packages put them, and the guest rootfs.img
"mounted" at the recipe's rootfs.mount_dir inside it (openEuler layout: /bin → usr/bin)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget
from cai_tui.targets.sysroot import SysrootTarget

from .checklib import expect

ETC_CONF = "/etc/kata-containers/configuration.toml"
DEFAULT_CONF = "/usr/share/defaults/kata-containers/configuration.toml"
HOOK = "/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
SEED_HOOK = "#!/bin/bash -x\n/usr/bin/nvidia-container-toolkit -debug $@\n"
SET = 'guest_hook_path = "/usr/share/oci/hooks"'
COMMENTED = '#guest_hook_path = "/usr/share/oci/hooks"'


def kata_toml(hook_line: str) -> str:
    """A configuration.toml shaped like kata's configuration-qemu.toml.in, with the virtCCA guest settings."""
    return f"""# Copyright (c) 2017-2019 Intel Corporation
# SPDX-License-Identifier: Apache-2.0
#
# XXX: WARNING: this file is auto-generated.
# XXX: Source file: "config/configuration-qemu.toml.in"

[hypervisor.qemu]
path = "/usr/bin/qemu-kvm"
kernel = "/var/lib/kata/kernel"
image = "/var/lib/kata/kata-containers.img"
machine_type = "virt"

# Optional space-separated list of options to pass to the guest kernel.
kernel_params = "virtcca_cvm_guest=1 cma=64M swiotlb=262144,force"

firmware = "/var/lib/kata/QEMU_EFI.fd"
default_vcpus = 4
default_memory = 20480
enable_annotations = ["enable_iommu"]

# Path to OCI hook binaries in the *guest rootfs*.
# This does not affect host-side hooks which must instead be added to
# the OCI spec passed to the runtime.
#
# Hooks must be stored in a subdirectory of guest_hook_path according to their
# hook type, i.e. "guest_hook_path/{{prestart,poststart,poststop}}".
# The agent will scan these directories for executable files and add them, in
# lexicographical order, to the lifecycle of the guest container.
{hook_line}

cold_plug_vfio = "root-port"
pcie_root_port = 1

[agent.kata]
debug_console_enabled = true

[runtime]
enable_debug = true
internetworking_model = "tcfilter"
vfio_mode = "guest-kernel"
"""


def put(root: Path, path: str, text: str | bytes, mode: int = 0o644) -> Path:
    f = root / path.lstrip("/")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(text if isinstance(text, bytes) else text.encode())
    f.chmod(mode)
    return f


def guest_rootfs(root: Path) -> Path:
    """The rootfs.img content after KATA-1.1 (toolkit installed) and KATA-1.6 (the seed's hook, chmod +x)."""
    put(root, "/usr/bin/bash", b"\x7fELF\x02\x01\x01", 0o755)
    put(root, "/usr/bin/nvidia-container-toolkit", b"\x7fELF\x02\x01\x01", 0o755)
    put(root, "/usr/bin/nvidia-smi", b"\x7fELF\x02\x01\x01", 0o755)
    put(root, "/etc/os-release", 'ID="openEuler"\nVERSION_ID="24.03"\n')
    os.symlink("usr/bin", root / "bin")
    put(root, HOOK, SEED_HOOK, 0o755)
    return root


def recipe(**answers: Any) -> KataRecipe:
    return KataRecipe.model_validate({"flow": "kata-virtcca", "name": "kata-test", "answers": answers})


def run(host: Any, check_id: str, rec: KataRecipe | None = None, sysroot: str | None = None) -> dict[str, CheckOutcome]:
    target = SysrootTarget(host) if isinstance(host, Path) else host
    ctx = CheckContext(
        recipe=rec if rec is not None else recipe(),
        targets={"host": target},
        redactor=Redactor(),
        timeout=10.0,
        sysroot=sysroot,
    )
    specs = [all_checks()[check_id]]
    return {o.id: o for o in asyncio.run(run_checks(specs, ctx, timeout=10.0))}


def observed(result: Any) -> str:
    return "\n".join(f"{e.source} | {e.observed}" for e in result.evidence)


# --------------------------------------------------------------------------------------------- kata.config


def test_hook_path_set_in_the_file_in_effect(tmp_path: Path) -> None:
    put(tmp_path, ETC_CONF, kata_toml(SET))
    put(tmp_path, DEFAULT_CONF, kata_toml(COMMENTED))  # the package's copy, shadowed by /etc
    res = expect(run(tmp_path, "kata.config"), "kata.config", "pass")
    assert res.summary == (
        f'kata loads {ETC_CONF}: guest_hook_path = "/usr/share/oci/hooks" (also present, not loaded: {DEFAULT_CONF})'
    )
    line = kata_toml(SET).splitlines().index(SET) + 1
    assert f"{ETC_CONF} | line {line}: {SET}" in observed(res)
    assert res.data["cold_plug_vfio"] == "root-port" and "virtcca_cvm_guest=1" in res.data["kernel_params"]


def test_configuration_without_the_virtcca_guest_parameter(tmp_path: Path) -> None:
    put(tmp_path, ETC_CONF, kata_toml(SET).replace("virtcca_cvm_guest=1 ", ""))
    res = expect(run(tmp_path, "kata.config"), "kata.config", "warn", "virtcca-not-cvm")
    assert res.summary.endswith("but its kernel_params lack virtcca_cvm_guest=1: the guest would not be a virtCCA CVM")
    assert 'kernel_params = "cma=64M swiotlb=262144,force"' in observed(res)


def test_hook_path_commented_out(tmp_path: Path) -> None:
    put(tmp_path, DEFAULT_CONF, kata_toml(COMMENTED))
    rec = recipe(kata={"config_path": DEFAULT_CONF})
    res = expect(run(tmp_path, "kata.config", rec), "kata.config", "fail", "kata-config-missing")
    line = kata_toml(COMMENTED).splitlines().index(COMMENTED) + 1
    assert res.summary == (
        f"guest_hook_path is not set in {DEFAULT_CONF}, the file kata loads (it is commented out, line {line})"
    )
    assert f"{DEFAULT_CONF} | line {line}: {COMMENTED}" in observed(res)
    assert SET in res.fix.text


def test_edited_file_is_not_the_one_in_effect(tmp_path: Path) -> None:
    # /etc exists with the hook commented; the user edited the package default instead
    put(tmp_path, ETC_CONF, kata_toml(COMMENTED))
    put(tmp_path, DEFAULT_CONF, kata_toml(SET))
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert f"not set in {ETC_CONF}" in res.summary and f"not loaded: {DEFAULT_CONF}" in res.summary
    # only the package default, hook set, while the recipe names /etc: warn that the recipe points elsewhere
    (tmp_path / ETC_CONF.lstrip("/")).unlink()
    res = expect(run(tmp_path, "kata.config"), "kata.config", "warn", "kata-config-missing")
    assert f"the recipe's kata.config_path is {ETC_CONF}, which kata does not load" in res.summary
    assert f"Set answers.kata.config_path to {DEFAULT_CONF}" in res.fix.text


def test_other_hook_path_and_broken_or_missing_files(tmp_path: Path) -> None:
    put(tmp_path, ETC_CONF, kata_toml('guest_hook_path = "/usr/share/oci/hooks/prestart"'))
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert 'sets guest_hook_path = "/usr/share/oci/hooks/prestart", but the hook lies under' in res.summary
    put(tmp_path, ETC_CONF, kata_toml(SET).replace("[runtime]", "[runtime"))
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert res.summary.startswith(f"the kata configuration in effect is not valid: {ETC_CONF} is not valid TOML:")
    (tmp_path / ETC_CONF.lstrip("/")).unlink()
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert res.summary.startswith("no kata configuration file in effect: none of /etc/kata-containers/")


def test_kata_conf_file_overrides_the_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = "/opt/custom/kata/configuration-virtcca.toml"
    put(tmp_path, ETC_CONF, kata_toml(COMMENTED))
    put(tmp_path, custom, kata_toml(SET))
    host = SysrootTarget(tmp_path, inner=LocalTarget())  # files from the tree, the environment from this machine
    monkeypatch.setenv("KATA_CONF_FILE", custom)
    res = expect(run(host, "kata.config", recipe(kata={"config_path": custom})), "kata.config", "pass")
    assert res.summary.startswith(f"kata loads {custom}:") and f"not loaded: {ETC_CONF}" in res.summary
    assert f"printenv KATA_CONF_FILE | KATA_CONF_FILE={custom}" in observed(res)
    monkeypatch.setenv("KATA_CONF_FILE", "/opt/custom/missing.toml")
    res = expect(run(host, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert "KATA_CONF_FILE=/opt/custom/missing.toml, which does not exist" in res.summary


def test_hook_path_set_in_the_wrong_table(tmp_path: Path) -> None:
    """Set, but under [runtime] (or above every header): kata ignores it there. Not "commented out"."""
    text = kata_toml(COMMENTED).replace("[runtime]\n", f"[runtime]\n{SET}\n")
    put(tmp_path, ETC_CONF, text)
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    line = text.splitlines().index(SET) + 1
    shipped = text.splitlines().index(COMMENTED) + 1
    assert res.summary == (
        f"guest_hook_path is set in [runtime] (line {line}) of {ETC_CONF}, the file kata loads, but kata reads it "
        f"only under [hypervisor.qemu], where it is commented out (line {shipped})"
    )
    assert "Move the line under [hypervisor.qemu]" in res.fix.text and f"delete it from line {line}" in res.fix.text
    assert f"line {line}: {SET}  (in [runtime])" in observed(res) and res.data["set_in"] == ["runtime"]

    top = f"{SET}\n" + kata_toml("")  # above every header: the top-level table
    put(tmp_path, ETC_CONF, top)
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    assert res.summary.startswith(
        "guest_hook_path is set in the top level (before any [table] header) (line 1) of "
    ) and res.summary.endswith("only under [hypervisor.qemu], where it is not set")
    assert "commented out" not in res.summary


def test_empty_hook_path_disables_hooks(tmp_path: Path) -> None:
    """``guest_hook_path = ""`` (kata 3.24+ ship it so) turns hooks off: no talk of the agent looking in /prestart."""
    empty = 'guest_hook_path = ""'
    text = kata_toml(empty)
    put(tmp_path, ETC_CONF, text)
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    line = text.splitlines().index(empty) + 1
    assert res.summary == (
        f'{ETC_CONF} sets guest_hook_path = "" (line {line}): an empty value disables guest hooks — kata\'s agent '
        "runs none, so the hook under /usr/share/oci/hooks/prestart never runs"
    )
    assert "/prestart inside the guest" not in res.fix.text and "looks for hooks in" not in res.fix.text
    assert 'Replace the empty value: `guest_hook_path = "/usr/share/oci/hooks"` under [hypervisor.qemu]' in res.fix.text
    assert 'Kata 3.24 and later ship `guest_hook_path = ""`' in res.fix.text
    assert res.data["guest_hook_path"] == ""


def test_kata_324_template_in_effect(tmp_path: Path) -> None:
    """kata 3.24's own configuration-qemu.toml (rendered), as kata-deploy installs it: hooks off, said so."""
    from tests.parsers._captures import fixture

    conf = "/opt/kata/share/defaults/kata-containers/configuration-qemu-virtcca.toml"
    put(tmp_path, conf, fixture("kata-configuration-qemu-3.24.toml").body)
    res = expect(run(tmp_path, "kata.config", recipe(kata={"config_path": conf})), "kata.config", "fail")
    assert res.summary.startswith(f'{conf} sets guest_hook_path = "" (line 413): an empty value disables guest hooks')


def test_duplicated_key_named_at_both_lines(tmp_path: Path) -> None:
    text = kata_toml(f'{SET}\n#guest_hook_path = "/usr/share/oci/hooks"\nguest_hook_path = "/opt/hooks"')
    put(tmp_path, ETC_CONF, text)
    res = expect(run(tmp_path, "kata.config"), "kata.config", "fail", "kata-config-missing")
    first = text.splitlines().index(SET) + 1
    assert res.summary == (
        f"the kata configuration in effect is not valid: {ETC_CONF} is not valid TOML: guest_hook_path is set twice "
        f"in [hypervisor.qemu]: {ETC_CONF}:{first} and {ETC_CONF}:{first + 2}. TOML allows a key once per table, "
        "and kata refuses the file: keep the line you mean and delete the other"
    )


# --------------------------------------------------------------------------------------------- kata.hook


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A host tree with the guest rootfs mounted at /home/mnt (the recipe's default mount_dir)."""
    root = tmp_path / "host"
    guest_rootfs(root / "home/mnt")
    put(root, "/proc/mounts", "/dev/mapper/openeuler-root / ext4 rw,relatime 0 0\n/dev/loop0 /home/mnt ext4 rw 0 0\n")
    return root


def test_seed_hook_passes(host: Path) -> None:
    res = expect(run(host, "kata.hook"), "kata.hook", "pass")
    assert res.summary == (
        f"{HOOK} in sysroot:{host}/home/mnt: mode 0755, #!/bin/bash -x, calls /usr/bin/nvidia-container-toolkit"
    )
    text = observed(res)
    assert "mounted: /dev/loop0 /home/mnt ext4 rw 0 0" in text
    assert f"line 1 of {HOOK} | #!/bin/bash -x" in text
    assert f"{HOOK} | /usr/bin/nvidia-container-toolkit -debug $@" in text


def test_hook_not_executable(host: Path) -> None:
    (host / "home/mnt" / HOOK.lstrip("/")).chmod(0o644)
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert res.summary == f"{HOOK} is not executable (mode 0644): kata's agent skips it"
    assert f"stat {HOOK} | mode 0644" in observed(res) and "chmod +x" in res.fix.text


def test_hook_missing(host: Path) -> None:
    (host / "home/mnt" / HOOK.lstrip("/")).unlink()
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert res.summary == f"{HOOK} is not in the guest rootfs (sysroot:{host}/home/mnt)"


def test_hook_content_problems(host: Path) -> None:
    hook = host / "home/mnt" / HOOK.lstrip("/")
    hook.write_bytes(SEED_HOOK.replace("\n", "\r\n").encode())
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert "CRLF line endings" in res.summary and "'#!/bin/bash -x\\r'" in observed(res)
    hook.write_text("/usr/bin/nvidia-container-toolkit -debug $@\n")
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert "has no shebang line" in res.summary
    hook.write_text("#!/bin/bash -x\n# /usr/bin/nvidia-container-toolkit -debug $@\nexit 0\n")
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert res.summary == f"{HOOK} does not call nvidia-container-toolkit"
    hook.write_text(SEED_HOOK)
    (host / "home/mnt/usr/bin/nvidia-container-toolkit").unlink()
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert "calls /usr/bin/nvidia-container-toolkit, which is not in the guest rootfs" in res.summary
    assert "dnf --installroot=/home/mnt install nvidia-container-toolkit" in res.fix.text
    (host / "home/mnt/usr/bin/bash").unlink()
    res = expect(run(host, "kata.hook"), "kata.hook", "fail", "kata-hook-missing")
    assert res.summary == "the hook's interpreter /bin/bash is not in the guest rootfs"


def test_hook_outside_the_prestart_folder(host: Path) -> None:
    flat = "/usr/share/oci/hooks/nvidia-container-toolkit.sh"
    put(host / "home/mnt", flat, SEED_HOOK, 0o755)
    res = expect(run(host, "kata.hook", recipe(driver={"hook_path": flat})), "kata.hook", "fail", "kata-hook-missing")
    assert res.summary == f"{flat} is not in /usr/share/oci/hooks/prestart/, where kata's agent looks"


def test_rootfs_not_mounted_is_unknown(tmp_path: Path) -> None:
    (tmp_path / "home/mnt").mkdir(parents=True)
    res = expect(run(tmp_path, "kata.hook"), "kata.hook", "unknown")
    assert res.summary == "the guest rootfs is not readable: /home/mnt: empty (rootfs.img not mounted)"
    assert res.fix is not None and "mount /root/rootfs.img /home/mnt" in res.fix.text


def test_rootfs_from_a_local_mount_dir_or_a_doctor_sysroot(tmp_path: Path) -> None:
    rootfs = guest_rootfs(tmp_path / "mnt")
    rec = recipe(rootfs={"mount_dir": str(rootfs)})
    res = expect(run(LocalTarget(), "kata.hook", rec), "kata.hook", "pass")
    assert f"in sysroot:{rootfs}:" in res.summary
    empty_host = tmp_path / "capture"
    empty_host.mkdir()
    res = expect(run(empty_host, "kata.hook", sysroot=str(rootfs)), "kata.hook", "pass")
    assert f"--sysroot {rootfs} holds /usr/share/oci/hooks: read as the guest rootfs" in observed(res)
