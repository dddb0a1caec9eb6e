"""Reading an unmounted rootfs.img with debugfs: what the plan probes and what a check can read after KATA-1.7."""

from __future__ import annotations

from cai_tui.kata.rootfs_read import read_in_image, stat_in_image
from cai_tui.recipe import load_recipe
from cai_tui.render import registry

from .test_rootfs_lab import RootfsLab, mounts_below, rootfs_lab_fixture  # noqa: F401 (fixture)


def test_symlinks_resolve_inside_the_image_and_absent_files_are_none(rootfs_lab: RootfsLab) -> None:
    image = str(rootfs_lab.image)
    sh = stat_in_image(image, "/bin/sh")  # relative link: busybox
    env = stat_in_image(image, "/usr/bin/env")  # absolute link: /bin/busybox of the image, not the host's
    assert sh is not None and (sh.path, sh.kind) == ("/bin/busybox", "regular")
    assert env is not None and env.path == "/bin/busybox"
    assert read_in_image(image, "/bin/sh", 4) == b"\x7fELF"
    assert stat_in_image(image, "/etc/nothing-here") is None
    assert read_in_image(image, "/etc") is None  # a directory is not read
    assert read_in_image(image, "/etc/os-release") == b'NAME="cai-tui kata lab rootfs"\nID=cai-lab\n'


def test_the_hook_reads_back_from_the_unmounted_image(rootfs_lab: RootfsLab) -> None:
    hook = "/usr/share/oci/hooks/prestart/nvidia-container-toolkit.sh"
    assert stat_in_image(str(rootfs_lab.image), hook) is None
    assert rootfs_lab.run("add-hook").returncode == 0
    assert mounts_below(rootfs_lab.dir) == []
    st = stat_in_image(str(rootfs_lab.image), hook)
    assert st is not None and (st.kind, st.mode) == ("regular", 0o755)
    expected = registry.get("kata-hook").render(load_recipe(rootfs_lab.recipe).recipe).text
    assert read_in_image(str(rootfs_lab.image), hook) == expected.encode()
