"""CaptureTarget: a machine captured with scripts/capture-machine.sh answers commands as if live."""

from __future__ import annotations

import asyncio
import os
import shlex
from pathlib import Path

import pytest

from cai_tui.checks import instance
from cai_tui.targets.base import Target, TargetError
from cai_tui.targets.capture import (
    UNKNOWN_RC,
    CaptureTarget,
    is_capture_dir,
    is_not_captured,
    parse_capture_file,
    target_for_sysroot,
)
from cai_tui.targets.sysroot import SysrootTarget

REPO = Path(__file__).resolve().parents[2]
H100 = REPO / "tests/fixtures/captures/h100-vm-2026-11-22"
PARSERS = REPO / "tests/fixtures/parsers"
SCRIPT = REPO / "scripts/capture-machine.sh"


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_answers_from_the_real_capture() -> None:
    t = CaptureTarget(H100)
    assert t.name == f"capture:{os.path.realpath(H100)}"
    assert isinstance(t, Target)
    res = run(t.run(["nvidia-smi", "conf-compute", "-f"]))
    assert (res.rc, res.stdout, res.stderr) == (0, "CC status: OFF\n", "")
    assert res.target == t.name and res.argv == ("nvidia-smi", "conf-compute", "-f")
    grs = run(t.run(["nvidia-smi", "conf-compute", "-grs"]))
    assert grs.stdout == "\nConfidential Compute GPUs Ready state: not-ready\n\n"  # blank lines kept as captured


def test_sh_c_headers_match_unquoted_and_recorded_failures_keep_their_rc() -> None:
    t = CaptureTarget(H100)
    res = run(t.run(["sh", "-c", "docker version; docker compose version"]))  # header: "sh -c docker version; …"
    assert res.rc == 127 and res.stdout == "sh: 1: docker: not found\nsh: 1: docker: not found\n"
    assert not is_not_captured(res)  # a recorded failure is not a missing capture
    lspci = run(t.run(["lspci", "-nn", "-D"]))
    assert lspci.rc == 127 and "lspci: command not found" in lspci.stdout and not is_not_captured(lspci)
    tdx = run(t.run(list(instance.TDX_CMD)))
    assert tdx.rc == 0 and "ls: cannot access '/dev/tdx_guest'" in tdx.stdout


def test_a_command_not_captured_is_127_naming_it() -> None:
    t = CaptureTarget(H100)
    lines: list[tuple[str, str]] = []
    res = run(t.run(["nvidia-smi", "conf-compute", "-f", "-i", "0"], on_line=lambda s, ln: lines.append((s, ln))))
    assert res.rc == 127 and res.stdout == ""
    assert res.stderr.startswith("not in the capture (nvidia-smi conf-compute -f -i 0;")
    assert is_not_captured(res) and lines and lines[0][0] == "stderr"
    # and a captured one streams its lines on stdout, in order
    out: list[tuple[str, str]] = []
    run(t.run(["nvidia-smi", "-L"], on_line=lambda s, ln: out.append((s, ln))))
    assert out == [("stdout", "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-30ec2a13-3afc-235f-d8c6-fe3732955eb8)")]


def test_shlex_quoted_headers_and_notes_and_unknown_rc(tmp_path: Path) -> None:
    d = tmp_path / "cap"
    d.mkdir()
    for name in ("docker-version-json.txt", "nvidia-smi-fail-mismatch.txt"):
        (d / name).write_text((PARSERS / name).read_text())
    (d / "SOURCE.md").write_text("# not a capture file\n")
    (d / "printf.txt").write_text("# $ printf foo\nfoo# rc=3\n")  # output without a final newline
    t = CaptureTarget(d)
    res = run(t.run(list(instance.DOCKER_JSON)))  # header: docker version --format '{{json .}}'
    assert res.rc == 0 and res.stdout.startswith('{"Client":') and "##" not in res.stdout
    smi = run(t.run(["nvidia-smi"]))
    assert smi.rc == UNKNOWN_RC and smi.stdout.startswith("Failed to initialize NVML")
    assert run(t.run(["printf", "foo"])).stdout == "foo\n" and run(t.run(["printf", "foo"])).rc == 3
    assert t.commands == sorted(["docker version --format '{{json .}}'", "nvidia-smi", "printf foo"])


def test_bad_or_contradicting_captures_are_refused(tmp_path: Path) -> None:
    d = tmp_path / "dup"
    d.mkdir()
    (d / "a.txt").write_text("# $ uname -a\nLinux a\n# rc=0\n")
    (d / "b.txt").write_text("# $ uname -a\nLinux b\n# rc=0\n")
    with pytest.raises(ValueError, match=r"b\.txt and a\.txt both capture 'uname -a'"):
        CaptureTarget(d)
    (d / "b.txt").write_text("# $ uname -r\nno rc line\n")
    with pytest.raises(ValueError, match=r"rc="):
        CaptureTarget(d)
    (tmp_path / "nothing.txt").write_text("hello\n")
    with pytest.raises(ValueError, match="not a capture file"):
        parse_capture_file(str(tmp_path / "nothing.txt"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no capture files"):
        CaptureTarget(empty)


def test_files_need_a_sysroot_folder(tmp_path: Path) -> None:
    t = CaptureTarget(H100)
    for call in (
        t.read_file("/proc/cpuinfo"),
        t.exists("/dev/tdx_guest"),
        t.listdir("/sys"),
        t.readlink("/sys/x"),
        t.which("nvidia-smi"),
    ):
        with pytest.raises(TargetError, match="sysroot/ folder"):
            run(call)
    with pytest.raises(TargetError, match="read-only"):
        run(t.write_file("/tmp/x", b"x"))

    d = tmp_path / "cap"
    (d / "sysroot/proc").mkdir(parents=True)
    (d / "sysroot/proc/cpuinfo").write_text("flags : tdx_guest\n")
    (d / "sysroot/etc").mkdir()
    os.symlink("/proc/cpuinfo", d / "sysroot/etc/link")
    (d / "uname.txt").write_text("# $ uname -r\n6.6.0\n# rc=0\n")
    (tmp_path / "outside").write_text("secret")
    t = CaptureTarget(d)
    assert run(t.read_file("/proc/cpuinfo")) == b"flags : tdx_guest\n"
    assert run(t.read_file("/etc/link")) == b"flags : tdx_guest\n"  # absolute links stay inside the root
    assert run(t.exists("/proc/cpuinfo")) and not run(t.exists("/dev/tdx_guest"))
    assert run(t.listdir("/proc")) == ["cpuinfo"] and run(t.readlink("/etc/link")) == "/proc/cpuinfo"
    with pytest.raises(FileNotFoundError):
        run(t.read_file("/../outside"))
    assert run(t.run(["uname", "-r"])).stdout == "6.6.0\n"
    with pytest.raises(TargetError, match="read-only"):
        run(t.write_file("/proc/cpuinfo", b"x"))


def test_target_for_sysroot_chooses_by_content(tmp_path: Path) -> None:
    assert is_capture_dir(H100) and isinstance(target_for_sysroot(H100), CaptureTarget)
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/os-release").write_text("ID=x\n")
    (rootfs / "README.txt").write_text("# $ make install\nthen reboot\n")  # a header without '# rc=' is no capture
    assert not is_capture_dir(rootfs)
    chosen = target_for_sysroot(rootfs)
    assert isinstance(chosen, SysrootTarget) and chosen.name == f"sysroot:{os.path.realpath(rootfs)}"


def _script_commands() -> set[tuple[str, ...]]:
    commands = set()
    for line in SCRIPT.read_text().splitlines():
        if line.startswith("c "):
            commands.add(tuple(shlex.split(line)[2:]))
    return commands


def test_checks_run_exactly_what_capture_machine_records() -> None:
    """The commands the instance checks run on a capture must be those the script records, word for word."""
    recorded = _script_commands()
    for argv in (
        instance.SMI,
        instance.SMI_INVENTORY,
        instance.CC_F,
        instance.CC_Q,
        instance.CC_GRS,
        instance.PROC_VERSION_CMD,
        instance.SYSFS_PCI_CMD,
        instance.TDX_CMD,
        instance.CPUINFO_CMD,
        instance.DOCKER_CAPTURE,
    ):
        assert tuple(argv) in recorded, f"{shlex.join(argv)} is not recorded by {SCRIPT.name}"
    # and the real capture answers every one of them
    t = CaptureTarget(H100)
    for argv in recorded:
        assert not is_not_captured(run(t.run(list(argv)))), argv
