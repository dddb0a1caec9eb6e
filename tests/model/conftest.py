"""Fixtures of the model tests: a small model directory, a password file, a pristine native encryption of it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.model.modellib import PASSWORD, build_model, passfile, require_real_gocryptfs


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return build_model(tmp_path / "Qwen2.5-mini")


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    return passfile(tmp_path / "cachefs-password")


@pytest.fixture(scope="session")
def real_gocryptfs() -> tuple[str, str]:
    return require_real_gocryptfs()


@pytest.fixture(scope="session")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model dir, its native encryption with the manifest inside), made once; tests tamper with copies."""
    from cai_tui.actions.model_encrypt import encrypt_native

    base = tmp_path_factory.mktemp("pristine")
    src = build_model(base / "model")
    encrypt_native(str(src), str(base / "cipher"), PASSWORD, workers=2)
    return src, base / "cipher"


@pytest.fixture
def cipher(pristine: tuple[Path, Path], tmp_path: Path) -> Path:
    dst = tmp_path / "cipher"
    shutil.copytree(pristine[1], dst, symlinks=True)
    return dst
