"""SysrootTarget: a fake guest rootfs whose symlinks try to escape; every read must stay inside the root."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from cai_tui.targets.base import Target, TargetError
from cai_tui.targets.local import LocalTarget
from cai_tui.targets.parse import target_from_uri
from cai_tui.targets.sysroot import SysrootTarget

HOST_SECRET = b"HOST SECRET - must never be read through the sysroot\n"


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, Path]:
    """(root, host secret file beside it). The guest has its own /secret.txt; links aim at the host's."""
    host_secret = tmp_path / "secret.txt"
    host_secret.write_bytes(HOST_SECRET)
    root = tmp_path / "rootfs"
    for d in ("etc", "usr/bin", "usr/lib", "var/run", "run"):
        (root / d).mkdir(parents=True)
    (root / "secret.txt").write_bytes(b"guest secret\n")
    (root / "etc/os-release").write_text('ID="openEuler"\nVERSION_ID="24.03"\n')
    tool = root / "usr/bin/kata-agent"
    tool.write_bytes(b"#!/bin/sh\n")
    tool.chmod(0o755)
    (root / "usr/bin/not-executable").write_bytes(b"data")
    os.symlink("usr/bin", root / "bin")  # relative, as on merged-/usr systems
    os.symlink("/usr/lib", root / "lib")  # absolute: must mean the guest's /usr/lib
    etc = root / "etc"
    os.symlink(str(host_secret), etc / "abs-escape")  # absolute host path of a real host file
    os.symlink("../../../../../../../../secret.txt", etc / "climb-escape")
    os.symlink("../../../..", etc / "climb-dir")
    os.symlink("/..", etc / "root-parent")
    os.symlink("loop-b", etc / "loop-a")
    os.symlink("loop-a", etc / "loop-b")
    os.symlink("/nowhere/at/all", etc / "dangling")
    os.symlink("/run", root / "var/run/link-to-run")
    return root, host_secret


async def test_reads_resolve_inside_the_root(tree: tuple[Path, Path]) -> None:
    root, _host_secret = tree
    t = SysrootTarget(root)
    assert isinstance(t, Target)
    assert t.name == f"sysroot:{root}"
    assert b'ID="openEuler"' in await t.read_file("/etc/os-release")
    assert await t.read_file("/bin/kata-agent") == b"#!/bin/sh\n"  # through a relative dir link
    assert await t.read_file("etc/os-release", max_bytes=4) == b'ID="'


@pytest.mark.parametrize(
    "path",
    [
        "/etc/climb-escape",
        "/etc/climb-dir/secret.txt",
        "/etc/root-parent/secret.txt",
        "/../../../../secret.txt",
        "/etc/../../../secret.txt",
        "/var/run/link-to-run/../../../../secret.txt",
    ],
)
async def test_climbing_links_stop_at_the_root(tree: tuple[Path, Path], path: str) -> None:
    root, _ = tree
    assert await SysrootTarget(root).read_file(path) == b"guest secret\n"


async def test_absolute_link_to_a_host_file_is_taken_inside_the_root(tree: tuple[Path, Path]) -> None:
    root, host_secret = tree
    t = SysrootTarget(root)
    assert host_secret.read_bytes() == HOST_SECRET  # the host file is there and readable …
    with pytest.raises(FileNotFoundError):  # … but the guest's link means <root><that path>, which does not exist
        await t.read_file("/etc/abs-escape")
    assert not await t.exists("/etc/abs-escape")
    assert not await t.exists(str(host_secret))  # an absolute host path is a guest path too
    assert await t.readlink("/etc/abs-escape") == str(host_secret)  # the link's text, as the guest sees it
    assert t.host_path("/etc/abs-escape") == str(root) + str(host_secret)


async def test_link_loops_and_dangling_links(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    t = SysrootTarget(root)
    with pytest.raises(OSError) as e:
        await t.read_file("/etc/loop-a")
    assert e.value.errno == errno.ELOOP
    assert not await t.exists("/etc/loop-a")
    assert not await t.exists("/etc/dangling")
    assert await t.readlink("/etc/dangling") == "/nowhere/at/all"
    assert await t.readlink("/etc/os-release") is None
    with pytest.raises(FileNotFoundError):
        await t.readlink("/etc/absent")


async def test_listdir_exists_which(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    t = SysrootTarget(root)
    assert await t.listdir("/bin") == ["kata-agent", "not-executable"]
    assert await t.listdir("/etc/climb-dir") == sorted(os.listdir(root))
    assert await t.exists("/lib")  # absolute link → guest /usr/lib
    assert await t.exists("/")
    with pytest.raises(FileNotFoundError):
        await t.listdir("/opt")
    assert await t.which("kata-agent") == "/usr/bin/kata-agent"
    assert await t.which("/bin/kata-agent") == "/bin/kata-agent"
    assert await t.which("not-executable") is None
    assert os.path.exists("/bin/sh")
    assert await t.which("sh") is None, "which() looked at the host, not the guest"


async def test_writes_are_re_rooted(tree: tuple[Path, Path]) -> None:
    root, host_secret = tree
    t = SysrootTarget(root)
    await t.write_file("/etc/new.conf", b"x=1\n", mode=0o644)
    assert (root / "etc/new.conf").read_bytes() == b"x=1\n"
    assert stat.S_IMODE((root / "etc/new.conf").stat().st_mode) == 0o644
    await t.write_file("/etc/climb-dir/dropped", b"y")
    assert (root / "dropped").read_bytes() == b"y"
    assert not (host_secret.parent / "dropped").exists()


async def test_run_is_refused_without_inner(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    with pytest.raises(TargetError, match="commands cannot run in a sysroot"):
        await SysrootTarget(root).run(["true"])
    inner = SysrootTarget(root, inner=LocalTarget())
    r = await inner.run(["sh", "-c", "echo from-inner"])
    assert r.rc == 0 and r.stdout == "from-inner\n"
    assert await inner.read_file("/etc/climb-escape") == b"guest secret\n"


async def test_uri(tree: tuple[Path, Path]) -> None:
    root, _ = tree
    t = target_from_uri(f"sysroot:{root}")
    assert isinstance(t, SysrootTarget) and t.root == str(root)
    with pytest.raises(ValueError, match="not a directory"):
        target_from_uri(f"sysroot:{root}/etc/os-release")
