"""The wizard's log pane side by side with Textual's built-in ``Log``, each fed the same lines the same way in a running
app (``App.run_test``, headless).

Run: .venv/bin/python benchmarks/bench_log_pane.py [--lines 100000] [--chunk 100] [--memory-lines 1000000]

* drain — ``--lines`` lines written at full speed (``write_lines`` of ``--chunk`` lines, yielding to the event loop
  between chunks, as the engine bridge's drain does), until the last line is on screen: seconds, lines/s;
* key latency — while the same stream runs (again and again until at least 100 presses are measured), a key press
  every 20 ms: time from the key event being posted until its
  action ran and the screen was refreshed after it (p50/p95/max; goal p95 < 100 ms);
* memory — ``--memory-lines`` lines through a 20,000-line buffer under tracemalloc: current and peak MiB after
  (bounded: it must not grow with the line count).
Both widgets get ``max_lines=20000``. Ratios are LogPane ÷ Log (lower is better for time and memory).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from textual import events
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets import Log

from cai_tui.tui.widgets.log_pane import LogPane

MAX_LINES = 20_000
SIZE = (120, 40)
PROBE_EVERY_S = 0.02
MIN_KEYS = 100  # the latency phase streams rounds of --lines until this many key presses are measured …
MAX_ROUNDS = 50  # … or this many rounds


def make_line(i: int) -> str:
    return (
        f"cachefs-1  | 2025-06-01T08:{i // 60 % 60:02d}:{i % 60:02d}Z INFO fetched block {i} of "
        f"model-00001-of-00002.safetensors ({i * 4096} bytes)"
    )


class BenchApp(App[None]):
    BINDINGS = [Binding("x", "probe", "probe")]

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.widget: Any = LogPane(max_lines=MAX_LINES) if kind == "LogPane" else Log(max_lines=MAX_LINES)
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self._probe = 0

    def compose(self) -> ComposeResult:
        yield self.widget

    def on_mount(self) -> None:
        self.widget.focus()

    def post_probe(self) -> None:
        self._probe += 1
        self.sent[self._probe] = time.perf_counter()
        self.post_message(events.Key("x", "x"))

    def action_probe(self) -> None:
        n = min(self.sent)  # keys are handled in order
        t0 = self.sent.pop(n)
        self.call_after_refresh(lambda: self.latencies.append(time.perf_counter() - t0))


async def feed(widget: Any, lines: int, chunk: int, start: int = 0) -> None:
    batch: list[str] = []
    for i in range(start, start + lines):
        batch.append(make_line(i))
        if len(batch) == chunk:
            widget.write_lines(batch)
            batch = []
            await asyncio.sleep(0)
    if batch:
        widget.write_lines(batch)


def last_visible(widget: Any) -> str:
    """The text of the widget's bottom visible row."""
    height = widget.scrollable_content_region.height
    strip = widget.render_line(height - 1)
    return "".join(seg.text for seg in strip).rstrip()


async def wait_painted(pilot: Any, widget: Any, last: str, timeout: float = 300.0) -> None:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        await pilot.pause()
        if last_visible(widget).startswith(last[:100]):
            return
    raise RuntimeError(f"{type(widget).__name__}: the last line was not painted within {timeout} s")


async def drain(kind: str, lines: int, chunk: int) -> dict[str, float]:
    app = BenchApp(kind)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        await feed(app.widget, lines, chunk)
        await wait_painted(pilot, app.widget, make_line(lines - 1))
        seconds = time.perf_counter() - t0
        await app.workers.wait_for_complete()
    return {"drain_s": seconds, "lines_per_s": lines / seconds}


async def latency(kind: str, lines: int, chunk: int) -> dict[str, float]:
    app = BenchApp(kind)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        done = asyncio.Event()

        async def prober() -> None:
            while not done.is_set():
                app.post_probe()
                await asyncio.sleep(PROBE_EVERY_S)

        probe = asyncio.create_task(prober())
        fed = 0
        while fed < lines or (len(app.latencies) < MIN_KEYS and fed < lines * MAX_ROUNDS):
            await feed(app.widget, lines, chunk, start=fed)  # streams again until enough key presses are measured
            fed += lines
        done.set()
        await probe
        await wait_painted(pilot, app.widget, make_line(fed - 1))
        await pilot.pause(0.2)
        await app.workers.wait_for_complete()
    ms = sorted(x * 1000 for x in app.latencies)
    return {
        "keys": len(ms),
        "p50_ms": statistics.median(ms),
        "p95_ms": ms[int(0.95 * (len(ms) - 1))],
        "max_ms": ms[-1],
    }


async def memory(kind: str, lines: int, chunk: int) -> dict[str, float]:
    app = BenchApp(kind)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        gc.collect()
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        await feed(app.widget, lines // 10, chunk)
        await pilot.pause()
        await app.workers.wait_for_complete()
        gc.collect()
        after_tenth, _ = tracemalloc.get_traced_memory()
        await feed(app.widget, lines - lines // 10, chunk)
        await wait_painted(pilot, app.widget, make_line(lines - lines // 10 - 1))
        await app.workers.wait_for_complete()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        held = len(app.widget.lines)
    mib = 1 << 20
    return {
        "current_mib": (current - base) / mib,
        "peak_mib": (peak - base) / mib,
        "after_10pct_mib": (after_tenth - base) / mib,
        "lines_held": held,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--memory-lines", type=int, default=1_000_000)
    ap.add_argument("--memory-chunk", type=int, default=1000)
    args = ap.parse_args()
    kinds = ("LogPane", "Log")
    results: dict[str, dict[str, Any]] = {k: {} for k in kinds}
    for kind in kinds:  # each measurement of both widgets back to back, so machine noise hits both alike
        results[kind].update(asyncio.run(drain(kind, args.lines, args.chunk)))
    for kind in kinds:
        results[kind].update(asyncio.run(latency(kind, args.lines, args.chunk)))
    for kind in kinds:
        results[kind].update(asyncio.run(memory(kind, args.memory_lines, args.memory_chunk)))

    rows = [
        ("drain_s", f"drain {args.lines:,} lines (s)", "{:.2f}"),
        ("lines_per_s", "lines/s", "{:,.0f}"),
        ("p50_ms", "key latency p50 (ms)", "{:.1f}"),
        ("p95_ms", "key latency p95 (ms)", "{:.1f}"),
        ("max_ms", "key latency max (ms)", "{:.1f}"),
        ("keys", "key presses measured", "{:.0f}"),
        ("after_10pct_mib", f"memory after {args.memory_lines // 10:,} lines (MiB)", "{:.1f}"),
        ("current_mib", f"memory after {args.memory_lines:,} lines (MiB)", "{:.1f}"),
        ("peak_mib", "tracemalloc peak (MiB)", "{:.1f}"),
        ("lines_held", "lines held", "{:,.0f}"),
    ]
    print(f"{'measure':<42} {'LogPane':>12} {'Textual Log':>12} {'ratio':>8}")
    for key, label, fmt in rows:
        a, b = results["LogPane"][key], results["Log"][key]
        ratio = f"{a / b:8.2f}" if b else "       -"
        print(f"{label:<42} {fmt.format(a):>12} {fmt.format(b):>12} {ratio}")
    p95 = results["LogPane"]["p95_ms"]
    grown = results["LogPane"]["current_mib"] - results["LogPane"]["after_10pct_mib"]
    print(f"goal key latency p95 < 100 ms while streaming: {p95:.1f} ms -> {'met' if p95 < 100 else 'NOT met'}")
    print(f"memory bounded: {grown:+.1f} MiB from {args.memory_lines // 10:,} to {args.memory_lines:,} lines")
    print(json.dumps({"bench": "log_pane", "args": vars(args), "results": results}))


if __name__ == "__main__":
    main()
