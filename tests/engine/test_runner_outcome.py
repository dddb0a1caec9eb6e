"""A doer that finds its work already done says so (events.report_done) and the engine reports the item skipped, not
applied; a guard check that does not run for the recipe's flow neither proves nor refutes the step."""

from __future__ import annotations

import asyncio
import shlex
from pathlib import Path

from cai_tui import events as ev
from cai_tui.engine.items import Item
from cai_tui.engine.runner import Runner
from cai_tui.engine.session import Session
from cai_tui.recipe import load_recipe
from tests.helpers import REPO

KATA = REPO / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"


def _run(item: Item, tmp_path: Path) -> object:
    async def go() -> object:
        session = Session(load_recipe(KATA), timeout=5)
        try:
            return await Runner(session, ev.discard, files_dir=tmp_path).run_item(item)
        finally:
            await session.aclose()

    return asyncio.run(go())


def _item(script: str, guard: tuple[str, ...] = ()) -> Item:
    return Item(
        stage="gpu-vfio", covers="KATA-3.1", kind="action", name="t.doer", title="t", target="host",
        argv=("sh", "-c", script), changes="changes things", guard=guard,
    )  # fmt: skip


def test_a_doer_that_reports_done_is_skipped(tmp_path: Path) -> None:
    said = ev.json_line(ev.note("the GPU is on vfio-pci already; nothing to do", data={"outcome": ev.UNCHANGED}))
    res = _run(_item(f"echo {shlex.quote(said)}; echo summary"), tmp_path)
    assert res.status == "skipped"  # type: ignore[attr-defined]
    assert res.detail == "already done: the GPU is on vfio-pci already; nothing to do"  # type: ignore[attr-defined]
    res = _run(_item("echo bound; echo summary"), tmp_path)
    assert (res.status, res.detail) == ("applied", "summary")  # type: ignore[attr-defined]


def test_report_done_writes_the_event_only_under_the_engine(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv(ev.EVENTS_ENV, raising=False)
    assert ev.report_done("x") == "x" and capsys.readouterr().out == ""
    monkeypatch.setenv(ev.EVENTS_ENV, "jsonl")
    ev.report_done("already there")
    parsed = ev.parse_line(capsys.readouterr().out.strip())
    assert parsed is not None and ev.is_unchanged(parsed) and parsed.text == "already there"


def test_a_guard_of_another_flow_neither_proves_nor_refutes(tmp_path: Path) -> None:
    # gpu.driver is a check of the cai flow: on a kata recipe it does not run, so the guard is "unknown" (the doer runs)
    res = _run(_item("echo ran", guard=("gpu.driver",)), tmp_path)
    assert (res.status, res.detail) == ("applied", "ran")  # type: ignore[attr-defined]
