"""The troubleshooter against real failures of the lab CAI stack (issue 6's fault matrix).

Each fault of :mod:`tests.labstack.faults` is injected into a fresh lab + stack (lab switch, wrong cai.env value,
lab-only container setting, or a change to what the lab stores), the stack is started with ``docker compose up -d
--wait`` exactly as deployed, and :func:`cai_tui.troubleshoot.troubleshoot` reads the containers (with the recipe, so
the related doctor checks run as they would for a user). Per fault the test demands: the right fix among the
root service's top three findings, and no high-confidence finding that is wrong for this fault. The last test
demands the right fix ranked first for ≥ 90 % of the faults and prints the table (figures for the closing note).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.labstack.conftest import StackBedFactory
from tests.labstack.faults import FAULTS, Fault, fill_env

SETTLE_TIMEOUT_S = 60.0
QUIET_S = 3.0
FIRST_GOAL = 0.90
MIN_FAULTS = 25


@dataclass
class Outcome:
    fault: str
    root: str
    expected: str
    ranked: list[tuple[str, str]]  # (faq_id, confidence) of the root container, best first
    confident_wrong: list[str]
    evidence: str
    seconds: float

    @property
    def rank(self) -> int | None:
        ids = [f for f, _ in self.ranked]
        return ids.index(self.expected) + 1 if self.expected in ids else None


RESULTS: dict[str, Outcome] = {}


def _settled(bed: Any, root: str) -> None:
    """Wait until the root service's container has failed or become healthy and nothing changed for QUIET_S."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    last: Any = None
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        now = bed.containers()
        if now != last:
            last, quiet_since = now, time.monotonic()
        st = now.get(f"cai-docker-{root}-1")
        root_done = st is not None and (st.state in ("exited", "dead") or st.health in ("healthy", "unhealthy"))
        if root == "inference" and st is not None and st.state == "running" and st.health is None:
            root_done = False  # vLLM has no healthcheck: running means it has not failed yet
        if root_done and time.monotonic() - quiet_since >= QUIET_S:
            return
        time.sleep(0.5)


def _report(bed: Any) -> Any:
    from cai_tui.cli.doctor_cmd import build_targets
    from cai_tui.recipe import load_recipe
    from cai_tui.targets.local import LocalTarget
    from cai_tui.troubleshoot import TroubleshootOptions, troubleshoot

    loaded = load_recipe(bed.recipe_file)
    targets = build_targets(loaded.recipe, "cai", None, None)
    targets["instance"] = LocalTarget()  # the stack runs on this machine
    return asyncio.run(troubleshoot(TroubleshootOptions(loaded=loaded, targets=targets, timeout=8.0)))


def _inject(fault: Fault, lab: Any, tmp: Path) -> tuple[dict[str, str], dict[str, dict[str, str | None]]]:
    env = fill_env(fault.env, lab)
    if fault.prepare is not None:
        env.update(fault.prepare(lab, tmp))
    for name in fault.lab_faults:
        lab.faults.set(name, True)
    return env, {k: dict(v) for k, v in fault.service_env.items()}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault(fault: Fault, lab: Any, stack_bed_factory: StackBedFactory, tmp_path: Path) -> None:
    t0 = time.monotonic()
    env, service_env = _inject(fault, lab, tmp_path)
    bed = stack_bed_factory(env_overrides=env, service_env=service_env, mem_limit=fault.mem_limit)
    up = bed.up(timeout=90)
    assert not up.ok, f"{fault.name}: the stack came up healthy although the fault was injected:\n{up.text}"
    _settled(bed, fault.root)
    report = _report(bed)
    doc = json.loads(report.to_json())
    assert doc["schema"] == "cai-tui/troubleshoot/v1" and report.exit_code == 1

    accepted = set(fault.expect.values()) | set(fault.also)
    wrong = sorted(
        f"{f['service']}: {f['faq_id']}"
        for f in doc["findings"]
        if f["confidence"] == "high" and f["faq_id"] not in accepted
    )
    root_findings = [f for f in doc["findings"] if f["service"] == fault.root]
    ranked = [(f["faq_id"], f["confidence"]) for f in sorted(root_findings, key=lambda f: f["rank"])]
    expected = fault.expect[fault.root]
    top = next((f for f in root_findings if f["faq_id"] == expected), None)
    outcome = Outcome(
        fault.name,
        fault.root,
        expected,
        ranked,
        wrong,
        (top or {}).get("evidence", {}).get("line", "") if top else "",
        time.monotonic() - t0,
    )
    RESULTS[fault.name] = outcome
    detail = f"{fault.name} ({fault.how}): {fault.root} ranked {ranked}\n{report.to_text()}"
    assert outcome.rank is not None and outcome.rank <= 3, detail
    assert top is not None and top["evidence"]["line"], detail
    assert wrong == [], detail
    # every other service the fault names shows its expected fix among its top three
    for service, faq_id in list(fault.expect.items())[1:]:
        ids = [f["faq_id"] for f in sorted(doc["findings"], key=lambda f: f["rank"]) if f["service"] == service]
        assert faq_id in ids[:3], f"{fault.name}: {service} ranked {ids}\n{report.to_text()}"


def test_matrix_ranking() -> None:
    """Runs after the parametrized faults (same module, defined later): ≥ 25 faults, right fix first ≥ 90 %."""
    missing = [f.name for f in FAULTS if f.name not in RESULTS]
    assert len(FAULTS) >= MIN_FAULTS
    assert not missing, f"run the whole module: faults without a result: {missing}"
    outcomes = [RESULTS[f.name] for f in FAULTS]
    first = sum(1 for o in outcomes if o.rank == 1)
    top3 = sum(1 for o in outcomes if o.rank is not None and o.rank <= 3)
    wrong = sum(len(o.confident_wrong) for o in outcomes)
    rows = [
        f"{o.fault:28} {o.root:22} {o.expected:26} rank {o.rank}  {o.ranked[0][1] if o.ranked else '-':6} "
        f"{o.seconds:5.1f}s  {o.evidence[:90]}"
        for o in outcomes
    ]
    summary = (
        f"fault matrix: {len(outcomes)} faults; right fix first {first}/{len(outcomes)} "
        f"({first / len(outcomes):.0%}), top three {top3}/{len(outcomes)}, confident wrong {wrong}"
    )
    text = "\n".join([summary, *rows])
    print(text)
    out = os.environ.get("CAI_TUI_FAULT_MATRIX_OUT")
    if out:
        Path(out).write_text(text + "\n", "utf-8")
    assert top3 == len(outcomes) and wrong == 0, text
    assert first / len(outcomes) >= FIRST_GOAL, text
