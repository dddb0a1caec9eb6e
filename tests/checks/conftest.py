"""Fixtures of the check tests.

* ``lab`` — as the shared fixture, but started on a copy of a session-wide seeded state directory, so each test
  pays for the lab's start and not for the demo seed's scrypt again;
* ``policy_lab`` — that lab with the CAI-4.1 bucket policy granting the recipe's instance IP (127.0.0.1).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROXY_VARS

# The lab recipe's instance.public_ip is 127.0.0.1; the seed's CAI-4.1 policy for it.
LAB_POLICY = (
    '{"Version":"1","Statement":[{"Effect":"Allow","Principal":["*"],'
    '"Action":["oss:GetObject","oss:ListObjects"],'
    '"Resource":["acs:oss:*:*:lab-models","acs:oss:*:*:lab-models/*"],'
    '"Condition":{"IpAddress":{"acs:SourceIp":["127.0.0.1/32"]},"StringNotLike":{"acs:SourceVpc":"vpc-*"}}}]}'
)


@pytest.fixture(scope="session")
def lab_seed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from cai_tui.lab.orchestrator import Lab

    state = tmp_path_factory.mktemp("checks-lab-seed") / "state"
    with Lab(state_dir=state):
        pass
    return state


@pytest.fixture
def lab(lab_seed: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from cai_tui.lab.orchestrator import LOCK_FILE, Lab

    for var in PROXY_VARS:  # the SDKs honour proxy variables; everything must go straight to 127.0.0.1
        monkeypatch.delenv(var, raising=False)
    state = tmp_path / "lab-state"
    shutil.copytree(lab_seed, state, ignore=shutil.ignore_patterns(LOCK_FILE))
    with Lab(state_dir=state) as running:
        yield running


@pytest.fixture
def policy_lab(lab: Any, lab_clients: Any) -> Any:
    """The lab with the CAI-4.1 bucket policy in place (as the seed's step does it, through oss2)."""
    lab_clients(lab.credentials_path).oss_bucket().put_bucket_policy(LAB_POLICY)
    return lab
