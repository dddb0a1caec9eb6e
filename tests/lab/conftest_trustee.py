"""Fixtures of the lab Trustee tests (imported explicitly by the ``test_trustee_*`` modules)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.trustee import TrusteeLab, TrusteeSettings, generate_admin_keypair

__all__ = ["admin_keys", "faults", "make_trustee", "trustee"]

_KEYS = generate_admin_keypair()


@pytest.fixture
def admin_keys() -> tuple[bytes, bytes]:
    """(private_pem, public_pem) of the lab's admin (one pair per test session: key generation is not under test)."""
    return _KEYS


@pytest.fixture
def faults() -> FaultSwitches:
    return FaultSwitches()


@pytest.fixture
def make_trustee(
    tmp_path: Path, admin_keys: tuple[bytes, bytes], faults: FaultSwitches
) -> Iterator[Callable[..., TrusteeLab]]:
    """``make_trustee(**settings, kms_lookup=None)`` → a started lab; every lab is stopped after the test."""
    labs: list[TrusteeLab] = []

    def factory(*, kms_lookup: Callable[[str], bytes | None] | None = None, **settings: Any) -> TrusteeLab:
        lab = TrusteeLab(
            tmp_path / f"state{len(labs)}",
            admin_keys[1],
            faults,
            TrusteeSettings(**settings),
            kms_lookup=kms_lookup,
        )
        labs.append(lab)
        return lab.start()

    yield factory
    for lab in labs:
        lab.stop()


@pytest.fixture
def trustee(make_trustee: Callable[..., TrusteeLab]) -> TrusteeLab:
    """A default lab (plays the seed's Trustee: protocol 0.1.0, Alibaba statuses, allow-all) with one secret."""
    lab = make_trustee()
    lab.set_resource("default", "test", "model_key", b"seed-model-key-material")
    return lab


def handler_threads(lab: TrusteeLab) -> int:
    """Threads serving connections of this lab (the server names them lab-trustee-<port>-conn-…)."""
    prefix = f"lab-trustee-{lab.port}-conn"
    return sum(1 for t in threading.enumerate() if t.name.startswith(prefix))


def log_has(lab: TrusteeLab, text: str) -> bool:
    return any(text in line for line in lab.server_log())
