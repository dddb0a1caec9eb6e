"""container.running and guest.inference (the guards of KATA-5.1 and KATA-5.3/5.4) where nothing runs: a private
containerd without the task, a network namespace without the container's address. Passing is shown by the kata lab's
replay (test_kata_lab_replay), where both guard the running stack."""

from __future__ import annotations

import asyncio
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.lab.kata.containerd import LabContainerd, start_containerd
from cai_tui.recipe.model import KataRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget


@pytest.fixture
def ctrd(tmp_path: Path) -> Iterator[LabContainerd]:
    with start_containerd(tmp_path / "c") as c:
        yield c


def _run(ctrd: LabContainerd, netns: str, ids: tuple[str, ...]) -> dict[str, CheckOutcome]:
    answers = {
        "container": {"address": ctrd.address, "namespace": "cai-check", "name": "arch"},
        "cni": {"netns": netns},
    }
    rec = KataRecipe.model_validate({"flow": "kata-virtcca", "name": "t", "answers": answers})
    ctx = CheckContext(recipe=rec, targets={"host": LocalTarget()}, redactor=Redactor(), timeout=10.0)
    return {o.id: o for o in asyncio.run(run_checks([all_checks()[i] for i in ids], ctx, timeout=10.0))}


def test_no_task_and_no_address_fail_with_their_fixes(ctrd: LabContainerd) -> None:
    netns = f"cai-ck-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        res = _run(ctrd, netns, ("container.running", "guest.inference"))
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
    running = res["container.running"].result
    assert running.status == "fail" and running.summary == "the container arch is not started"
    assert running.fix is not None and running.fix.faq_id == "kata-container-not-running"
    assert "cai-tui kata container run" in running.fix.text
    inference = res["guest.inference"].result
    assert inference.status == "fail" and f"no address in netns {netns}" in inference.summary
    assert inference.fix is not None and inference.fix.faq_id == "cni-network-broken"
