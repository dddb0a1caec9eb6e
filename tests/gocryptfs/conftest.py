"""Fixtures for the gocryptfs engine tests: sample plaintext trees, fast configs, and the real gocryptfs binary."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from gocryptfs_testlib import FAST_LOGN, PASSWORD, RealGocryptfs, build_sample_tree

from cai_tui.gocryptfs import GocryptfsConfig, create_config


@pytest.fixture
def sample_tree(tmp_path: Path) -> Path:
    return build_sample_tree(tmp_path / "plain")


@pytest.fixture(scope="session")
def fast_config() -> tuple[GocryptfsConfig, bytes]:
    """A default-format config with scrypt logN=10 (pure unit tests only) and its master key."""
    return create_config(PASSWORD, scrypt_logn=FAST_LOGN)


@pytest.fixture(scope="session")
def gocryptfs(tmp_path_factory: pytest.TempPathFactory) -> RealGocryptfs:
    """The real gocryptfs binary with FUSE. Fails (never skips) when something is missing: CI installs it."""
    exe = shutil.which("gocryptfs")
    fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
    problems = []
    if exe is None:
        problems.append("the gocryptfs binary is not on PATH")
    if fusermount is None:
        problems.append("fusermount3/fusermount is not on PATH")
    if not os.path.exists("/dev/fuse"):
        problems.append("/dev/fuse does not exist")
    if os.geteuid() != 0:
        problems.append("the interoperability tests mount FUSE file systems and must run as root")
    if problems:
        pytest.fail(
            "gocryptfs interoperability tests cannot run: "
            + "; ".join(problems)
            + ". Install with: DEBIAN_FRONTEND=noninteractive apt-get install -y gocryptfs fuse3",
            pytrace=False,
        )
    assert exe is not None and fusermount is not None
    return RealGocryptfs(exe, fusermount, tmp_path_factory.mktemp("gocryptfs-real"))
