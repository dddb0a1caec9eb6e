"""The log pane on its own: the ring buffer's bound and dropped count, batched repaints, following the tail, search
with highlighted matches and n/N, copy to the clipboard, saving (atomic, 0600, redacted) — and the event bridge that
feeds it redacting engine events."""

from __future__ import annotations

import stat
from pathlib import Path

from textual.app import App, ComposeResult
from textual.message import Message
from textual.widgets import Input

from cai_tui import events as ev
from cai_tui.recipe import REDACTOR
from cai_tui.tui.engine_bridge import EventBridge, event_line
from cai_tui.tui.widgets.log_pane import LogPane, LogPanel
from cai_tui.tui.widgets.transfer_bar import RateMeter, clock, human


async def painted(pilot) -> None:  # type: ignore[no-untyped-def]
    """Until the pane's batched repaint has run (its timer fires within a frame; a loaded machine may take longer)."""
    import time

    pane = pilot.app.pane
    deadline = time.monotonic() + 10
    await pilot.pause(0.05)
    while pane._repaint is not None and time.monotonic() < deadline:
        await pilot.pause(0.05)
    await pilot.pause()


class PaneApp(App[None]):
    def __init__(self, max_lines: int = 100, save_dir: Path | None = None) -> None:
        super().__init__()
        self.pane = LogPane(max_lines=max_lines, save_dir=save_dir, save_name="test")
        self.messages: list[Message] = []

    def compose(self) -> ComposeResult:
        yield LogPanel(self.pane)

    def on_mount(self) -> None:
        self.pane.focus()


async def test_the_ring_buffer_keeps_the_last_lines_and_counts_the_dropped() -> None:
    app = PaneApp(max_lines=100)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        for i in range(1000):
            pane.write_line(f"line {i}")
        pane.write_lines(f"batch {i}" for i in range(50))  # any iterable
        await painted(pilot)
        assert pane.written == 1050 and pane.line_count == 100 and pane.dropped == 950
        assert pane.lines[0] == "line 950" and pane.lines[-1] == "batch 49"
        assert pane.virtual_size.height == 100
        assert 1 <= pane.repaints <= 5, f"one repaint per batch, not per line ({pane.repaints})"
        assert "950 earlier line(s) were dropped" in pane.text().splitlines()[0]


async def test_it_follows_the_tail_unless_scrolled_up_and_keeps_the_view_when_lines_drop() -> None:
    app = PaneApp(max_lines=200)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        pane.write_lines([f"a{i}" for i in range(150)])
        await painted(pilot)
        assert pane.following and pane.scroll_y == pane.max_scroll_y > 0
        pane.write_lines([f"b{i}" for i in range(10)])
        await painted(pilot)
        assert pane.following and pane.visible_lines()[-1] == "b9"
        await pilot.press("home")
        await pilot.pause()
        top = pane.visible_lines()[0]
        pane.write_lines([f"c{i}" for i in range(100)])  # 60 lines drop off the front
        await painted(pilot)
        assert not pane.following
        assert pane.dropped == 60
        assert pane.visible_lines()[0] == pane.lines[0] == "a60", "the top line left the buffer: the view starts there"
        assert top == "a0"
        await pilot.press("end")
        await pilot.pause()
        assert pane.following and pane.visible_lines()[-1] == "c99"


async def test_search_highlights_and_n_N_move_between_matches() -> None:
    app = PaneApp(max_lines=1000)
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.pane
        pane.write_lines([("ERROR disk full" if i % 100 == 7 else f"ok {i}") for i in range(500)])
        await painted(pilot)
        await pilot.press("slash")
        await pilot.pause()
        search = app.query_one("#log-search", Input)
        assert search.display and search.has_focus
        await pilot.press(*"error")
        await pilot.press("enter")
        await pilot.pause()
        assert pane.has_focus and not search.display
        assert pane.search_query == "error" and pane.matches == [7, 107, 207, 307, 407]
        assert pane.current_match == "ERROR disk full"
        first = pane.match_index
        assert pane.matches[first] - pane.dropped in range(int(pane.scroll_y), int(pane.scroll_y) + 24)
        # the match is drawn highlighted (reverse), the other lines plain
        row = pane.matches[first] - int(pane.scroll_y)
        strip = pane.render_line(row)
        assert any(seg.style and seg.style.reverse and seg.text == "ERROR" for seg in strip)
        await pilot.press("n")
        assert pane.match_index == (first + 1) % 5
        await pilot.press("N", "N")
        assert pane.match_index == (first - 1) % 5
        # lines written after the search are searched by the next n
        pane.write_lines(["another error"])
        await painted(pilot)
        for _ in range(6):
            await pilot.press("n")
        assert 500 in pane.matches
        # Escape closes the search input without leaving anything
        await pilot.press("slash")
        await pilot.press("escape")
        await pilot.pause()
        assert not search.display and pane.has_focus


async def test_copy_takes_the_match_or_the_visible_lines() -> None:
    app = PaneApp(max_lines=1000)
    async with app.run_test(size=(80, 24), message_hook=lambda m: app.messages.append(m)) as pilot:
        pane = app.pane
        pane.write_lines([f"line {i}" for i in range(300)])
        await painted(pilot)
        await pilot.press("y")
        await pilot.pause()
        visible = pane.visible_lines()
        assert app.clipboard == "\n".join(visible) and visible[-1] == "line 299"
        copied = [m for m in app.messages if isinstance(m, LogPane.Copied)]
        assert copied[-1].lines == len(visible) > 5
        pane.search("line 42")
        await pilot.press("y")
        await pilot.pause()
        assert app.clipboard == "line 42"


async def test_save_is_atomic_private_and_redacted(tmp_path: Path) -> None:
    secret = "s3cr3t-Value-for-the-log-pane"
    REDACTOR.add(secret)
    app = PaneApp(max_lines=10, save_dir=tmp_path / "files")
    async with app.run_test(size=(80, 24), message_hook=lambda m: app.messages.append(m)) as pilot:
        pane = app.pane
        bridge = EventBridge()
        bridge(ev.line(f"token={secret}", source="local"))
        bridge(ev.note(f"using {secret}"))
        lines = [event_line(e) for e in bridge.drain()]
        assert lines == ["[local] token=***", "» using ***"], "the bridge redacts every engine event"
        # a line that somehow holds a secret is still redacted on its way to disk
        pane.write_lines([*[f"x{i}" for i in range(20)], f"raw {secret}"])
        await painted(pilot)
        await pilot.press("s")
        await pilot.pause()
        saved = [m for m in app.messages if isinstance(m, LogPane.Saved)]
        assert saved and saved[-1].path is not None and saved[-1].error == ""
        path = saved[-1].path
        assert path.parent == tmp_path / "files" and path.name.startswith("test-")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert secret not in text and "raw ***" in text
        assert text.splitlines()[0].startswith("# 11 earlier line(s) were dropped")
        assert [p.name for p in path.parent.iterdir()] == [path.name], "no temporary file left"


def test_rate_and_eta_follow_the_last_seconds() -> None:
    meter = RateMeter(window_s=2.0)
    for i in range(11):
        meter.add(i * 1_000_000, at=100.0 + i * 0.5)  # 2 MB/s
    assert meter.rate is not None and abs(meter.rate - 2_000_000) < 1
    eta = meter.eta(20_000_000)
    assert eta is not None and abs(eta - 5.0) < 0.01
    meter.add(10_000_000, at=104.0 + 10)  # stalled for 10 s: the window shows it
    assert meter.rate is not None and meter.rate < 2_000_000
    assert human(3 * (1 << 20), "bytes") == "3.0 MiB" and human(7, "files") == "7 files"
    assert clock(65) == "1:05" and clock(3661) == "1:01:01"
