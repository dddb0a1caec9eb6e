"""The secret-leak tests' look inside ansible-runner's private data dir: normally a temporary folder removed after
the run, kept here so that the test can grep it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


def keep_private_dir(monkeypatch: pytest.MonkeyPatch, module: ModuleType, kept: Path) -> Path:
    """Make ``module.private_dir`` hand out ``kept`` (made 0700, never removed); returns ``kept``."""

    @contextlib.contextmanager
    def keep(prefix: str = "") -> Iterator[Path]:
        kept.mkdir(mode=0o700)
        yield kept  # not removed: the test reads it

    monkeypatch.setattr(module, "private_dir", keep)
    return kept
