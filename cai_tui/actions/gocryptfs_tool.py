"""CAI-1.3: the gocryptfs binary for the fuse engine — its version, and installing it through the system's packages.

The document pins v2.4.0 (the prebuilt static binary or a build of the tag). Every 2.x writes the same default
on-disk format (feature flags HKDF, GCMIV128, DirIV, EMENames, LongNames, Raw64), which the instance's cachefs
(v2.4.0) mounts; older releases may not. The package manager follows /etc/os-release: apt-get on Debian/Ubuntu,
dnf (or yum) on Alibaba Cloud Linux, Anolis, openEuler, CentOS/RHEL/Fedora.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

PINNED = (2, 4, 0)
PINNED_TEXT = "v2.4.0"
OS_RELEASE = Path("/etc/os-release")
STATIC_URL = "https://github.com/rfjakob/gocryptfs/releases/download/v2.4.0/gocryptfs_v2.4.0_linux-static_amd64.tar.gz"
DOCUMENTED_INSTALL = (
    f"wget {STATIC_URL} && tar xf gocryptfs_v2.4.0_linux-static_amd64.tar.gz && "
    "sudo install -m 0755 ./gocryptfs /usr/local/bin"
)
FORMAT_NOTE = (
    "the instance's cachefs runs gocryptfs v2.4.0; every 2.x writes the same default on-disk format, so it mounts "
    "what this one writes"
)
FIX_FAQ = "gocryptfs-missing"

_VERSION = re.compile(r"^gocryptfs\s+v?(\d+)\.(\d+)(?:\.(\d+))?\S*", re.MULTILINE)
APT_IDS = {"debian", "ubuntu", "linuxmint", "raspbian", "kali", "deepin", "uos"}
RPM_IDS = {"alinux", "anolis", "openeuler", "centos", "rhel", "fedora", "rocky", "almalinux", "ol", "amzn", "kylin"}


def parse_version(text: str) -> tuple[int, int, int] | None:
    """The version in ``gocryptfs -version`` output (``gocryptfs v2.4.0; go-fuse v2.4.0; …`` or Debian's
    ``gocryptfs 2.3; go-fuse …``); None when there is none."""
    m = _VERSION.search(text)
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


def version_text(version: tuple[int, int, int]) -> str:
    return "v" + ".".join(map(str, version))


def judge(version: tuple[int, int, int] | None) -> tuple[str, str]:
    """(pass|warn|fail|unknown, words) for an installed version."""
    if version is None:
        return "unknown", "the version could not be read from `gocryptfs -version`"
    shown = version_text(version)
    if version == PINNED:
        return "pass", f"gocryptfs {shown}, the version the document pins"
    if version[0] == 2:
        return "warn", f"gocryptfs {shown}, not the pinned {PINNED_TEXT}; {FORMAT_NOTE}"
    return "fail", f"gocryptfs {shown}: the document needs {PINNED_TEXT} (older releases may write another format)"


def os_release(path: Path = OS_RELEASE) -> dict[str, str]:
    """KEY=value pairs of /etc/os-release (quotes removed); empty when unreadable."""
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            out[key] = value.strip().strip("'\"")
    return out


def package_manager(release: dict[str, str], which: object = shutil.which) -> str | None:
    """apt-get, dnf or yum for this distribution (by ID, then ID_LIKE); None when unknown."""
    ids = [release.get("ID", "").lower(), *release.get("ID_LIKE", "").lower().split()]
    for i in ids:
        if i in APT_IDS:
            return "apt-get"
        if i in RPM_IDS:
            return "dnf" if callable(which) and which("dnf") else "yum"
    return None


def install_commands(manager: str, *, root: bool | None = None) -> list[list[str]]:
    """The commands that install gocryptfs (and fuse) with ``manager``; sudo in front when not root."""
    if root is None:
        root = os.geteuid() == 0
    sudo = [] if root else ["sudo"]
    if manager == "apt-get":
        env = ["env", "DEBIAN_FRONTEND=noninteractive"]
        return [
            [*sudo, *env, "apt-get", "update"],
            [*sudo, *env, "apt-get", "install", "-y", "--no-install-recommends", "gocryptfs", "fuse3"],
        ]
    return [[*sudo, manager, "install", "-y", "gocryptfs", "fuse"]]


__all__ = [
    "DOCUMENTED_INSTALL",
    "FIX_FAQ",
    "FORMAT_NOTE",
    "PINNED",
    "install_commands",
    "judge",
    "os_release",
    "package_manager",
    "parse_version",
]
