"""``replay --undo``'s engine: the undo line of every changing doer that applies, last stage first and last item
first; a failed undo does not stop the later ones; a doer step that cannot run here is planned as a manual item."""

from __future__ import annotations

import asyncio
from pathlib import Path

from cai_tui import events as ev
from cai_tui.actions.registry import ActionSpec, PlanStep
from cai_tui.engine.items import Item
from cai_tui.engine.plan import _action_items
from cai_tui.engine.replay import StagePlan
from cai_tui.engine.runner import Runner
from cai_tui.engine.session import Session
from cai_tui.engine.undo import run_undo, undo_items, undo_plans
from cai_tui.recipe import load_recipe
from cai_tui.stages import load_all
from tests.helpers import REPO

KATA = REPO / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"


def _item(stage: str, name: str, undo: tuple[str, ...], **kw: object) -> Item:
    return Item(
        stage=stage,
        covers="KATA-0",
        kind=kw.pop("kind", "action"),  # type: ignore[arg-type]
        name=name,
        title=name,
        target="host",
        argv=("true",),
        undo_argv=undo,
        changes=str(kw.pop("changes", f"changes {name}")),
        **kw,  # type: ignore[arg-type]
    )


def _plans(log: Path) -> list[StagePlan]:
    stages = load_all()["kata-virtcca"].stages

    def note(word: str) -> tuple[str, ...]:
        return ("sh", "-c", f"echo {word} >> {log}")

    return [
        StagePlan(
            stages[1],
            [
                _item(stages[1].id, "a1", note("a1")),
                _item(stages[1].id, "a2", ("sh", "-c", f"echo a2 >> {log}; echo 'cannot: busy' >&2; exit 4")),
                _item(stages[1].id, "read-only", note("never"), changes="nothing: reads"),
                _item(stages[1].id, "not-here", note("never"), applies=False),
                _item(stages[1].id, "no-undo", ()),
                _item(stages[1].id, "check", note("never"), kind="check"),
            ],
        ),
        StagePlan(stages[2], [_item(stages[2].id, "b1", note("b1")), _item(stages[2].id, "b2", note("b2"))]),
    ]


def test_undo_items_are_the_changing_doers_in_reverse(tmp_path: Path) -> None:
    items = undo_items(_plans(tmp_path / "log"))
    assert [it.name for it in items] == ["undo:b2", "undo:b1", "undo:a2", "undo:a1"]
    assert all(it.guard == () and it.undo_argv == () and it.argv[0] == "sh" for it in items)
    assert [p.stage.id for p in undo_plans(_plans(tmp_path / "log"))] == [
        s.id for s in reversed(load_all()["kata-virtcca"].stages[1:3])
    ]


def test_run_undo_runs_every_undo_and_reports_the_failure(tmp_path: Path) -> None:
    log = tmp_path / "log"
    loaded = load_recipe(KATA)
    events: list[ev.Event] = []

    async def go() -> object:
        session = Session(loaded, timeout=5)
        try:
            return await run_undo(Runner(session, events.append, files_dir=tmp_path), undo_plans(_plans(log)))
        finally:
            await session.aclose()

    report = asyncio.run(go())
    assert log.read_text().split() == ["b2", "b1", "a2", "a1"]  # the failure of a2 did not stop a1
    doc = report.to_json()  # type: ignore[attr-defined]
    assert doc["status"] == "failed" and report.exit_code == 1  # type: ignore[attr-defined]
    statuses = {i["item"]: i["status"] for i in doc["items"]}
    assert statuses == {"undo:b2": "applied", "undo:b1": "applied", "undo:a2": "failed", "undo:a1": "applied"}
    failed = next(i for i in doc["items"] if i["item"] == "undo:a2")
    assert "exited 4" in failed["detail"] and "cannot: busy" in failed["evidence"]
    assert any(e.kind == "step_started" and e.step.endswith("undo:b2") for e in events)


def test_a_doer_step_that_cannot_run_here_is_planned_as_manual() -> None:
    loaded = load_recipe(KATA)
    stage = load_all()["kata-virtcca"].stages[1]
    step = stage.steps[0]
    spec = ActionSpec(
        "test.manual",
        "t",
        "kata-virtcca",
        lambda _l: [
            PlanStep("install the tools", ["dnf", "--installroot=/mnt", "install", "gcc"], manual="dnf is not here")
        ],
    )
    from cai_tui.actions import registry

    registry._ACTIONS[spec.id] = spec
    try:
        (item,) = _action_items(stage, step, spec.id, loaded, ("disk.capacity",))
    finally:
        del registry._ACTIONS[spec.id]
    assert item.kind == "manual" and item.text == "dnf --installroot=/mnt install gcc"
    assert "manual: dnf is not here" in item.title and item.changes == "done by a person" and not item.argv
