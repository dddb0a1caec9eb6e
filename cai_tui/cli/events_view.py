"""The CLI's one renderer of :mod:`cai_tui.events`, and Ctrl-C as a cancellation.

:class:`EventsView` is an :data:`~cai_tui.events.EventSink`: ``line`` events are printed (``[source] text``), notes
as ``→ text`` (warnings and errors on stderr), ``progress`` as a rich bar per source with rate and ETA when stderr is
a terminal, else as a plain line every few seconds. Run as a child of the stage engine
(:func:`~cai_tui.events.child_wants_json`), it writes every event as one JSON line on stdout instead, which the
parent reads back with :func:`~cai_tui.events.parse_line`. Everything printed is redacted.

:func:`cancel_on_signals` turns the first Ctrl-C or SIGTERM into :meth:`CancelToken.cancel` (the work stops at its
next check and raises :class:`~cai_tui.events.Cancelled`); a second one raises KeyboardInterrupt as usual.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from ..events import CancelToken, Event, child_wants_json, json_line

PLAIN_INTERVAL_S = 5.0
"""Without a terminal, a progress line per source at most this often (and the last one)."""


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop returns


def _amount(n: float, unit: str) -> str:
    return _human(n) if unit == "bytes" else f"{int(n)} {unit}".rstrip()


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class _Plain:
    """One source's progress without a terminal: rate from the first event, a line every ``interval`` seconds."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.first: tuple[float, int] | None = None
        self.shown = float("-inf")
        self.finished = False

    def line(self, event: Event, now: float, interval: float) -> str | None:
        done, total, unit = event.done or 0, event.total, event.unit
        if total is not None and done > total:  # an estimate that fell short: the real amount is at least done
            total = done
        if self.first is None:
            self.first = (now, done)
        last = total is not None and done >= total
        if self.finished or not (last or now - self.shown >= interval):
            return None
        self.shown, self.finished = now, last
        parts = [f"{self.label}: {_amount(done, unit)}"]
        if total:
            parts[0] += f" of {_amount(total, unit)} ({100 * done / total:.0f}%)"
        elapsed = now - self.first[0]
        rate = (done - self.first[1]) / elapsed if elapsed > 0 else 0.0
        if rate > 0:
            parts.append(f"{_amount(rate, unit)}/s")
            if total and not last:
                parts.append(f"ETA {_eta((total - done) / rate)}")
        files = event.data.get("files_done"), event.data.get("files_total")
        if files[1] is not None:
            parts.append(f"{files[0]}/{files[1]} files")
        if event.text and not last:
            parts.append(event.text[-48:])
        return ", ".join(parts)


class EventsView:
    """An :data:`~cai_tui.events.EventSink` for a CLI command; use it as a context manager (the bar is stopped).

    ``out`` (``stdout`` or ``stderr``) takes lines and notes; progress goes to stderr. ``json_mode`` None: JSON lines
    when :func:`~cai_tui.events.child_wants_json`. ``live`` None: a rich bar when stderr is a terminal.
    """

    def __init__(
        self,
        *,
        out: str = "stdout",
        json_mode: bool | None = None,
        live: bool | None = None,
        interval: float = PLAIN_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from ..recipe import REDACTOR

        self._redact = REDACTOR.redact
        self._out = out
        self.json_mode = child_wants_json() if json_mode is None else json_mode
        self._live = live
        self._interval = interval
        self._clock = clock
        self._lock = threading.RLock()
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._plain: dict[str, _Plain] = {}

    # ------------------------------------------------------------------ the sink
    def __call__(self, event: Event) -> None:
        with self._lock:
            if self.json_mode:
                self._write(sys.stdout, json_line(event.redacted(self._redact)))
            elif event.kind == "progress":
                self._progress(event)
            else:
                text = self.render(event)
                if text is not None:
                    stream = sys.stderr if event.level in ("warn", "error") else getattr(sys, self._out)
                    self._write(stream, text)

    def render(self, event: Event) -> str | None:
        """The line a person sees for a non-progress event."""
        if event.kind == "line":
            return f"[{event.source}] {event.text}" if event.source else event.text
        if event.kind == "note":
            if event.level in ("warn", "error"):
                return f"{'warning' if event.level == 'warn' else 'error'}: {event.text}"
            return f"→ {event.text}"
        if event.kind == "step_started":
            return f"▶ {event.step}: {event.text}" if event.step else f"▶ {event.text}"
        if event.kind == "step_finished":
            return f"{event.status or 'done'} {event.step}: {event.text}".rstrip(": ")
        if event.kind == "check":
            return f"{event.status} {event.step}: {event.text}"
        return None

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(self._redact(text).rstrip("\n") + "\n")
        stream.flush()

    # ------------------------------------------------------------------ progress
    def _is_live(self) -> bool:
        if self._live is None:
            self._live = sys.stderr.isatty()
        return self._live

    def _progress(self, event: Event) -> None:
        key = event.source or event.step or event.unit or "progress"
        if not self._is_live():
            plain = self._plain.setdefault(key, _Plain(key))
            text = plain.line(event, self._clock(), self._interval)
            if text is not None:
                self._write(sys.stderr, text)
            return
        bar = self._start_bar()
        task = self._tasks.get(key)
        files = event.data.get("files_total")
        extra = f"{event.data.get('files_done')}/{files} files" if files is not None else ""
        fields = {"unit": event.unit, "path": self._redact(event.text)[-40:], "extra": extra}
        done = event.done or 0
        total = max(event.total, done) if event.total is not None else None  # never shown as done > total
        if task is None:
            self._tasks[key] = bar.add_task(key, total=total, completed=done, **fields)
        else:
            bar.update(task, total=total, completed=done, **fields)

    def _start_bar(self) -> Any:
        """Started at the first progress event: no empty bar before an early error."""
        if self._bar is None:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            amount, rate = _columns()
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                amount(),
                rate(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[extra]}"),
                TextColumn("{task.fields[path]}", style="dim", markup=False),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
        return self._bar

    def close(self) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.stop()
                self._bar = None

    def __enter__(self) -> EventsView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_COLUMNS: tuple[Any, Any] | None = None


def _columns() -> tuple[Any, Any]:
    """Rich columns that show bytes as sizes and speeds, and other units as counts (built on first use: rich is
    imported only when a bar is shown)."""
    global _COLUMNS
    if _COLUMNS is not None:
        return _COLUMNS
    from rich.progress import DownloadColumn, ProgressColumn, Task, TransferSpeedColumn
    from rich.text import Text

    class Amount(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._bytes = DownloadColumn(binary_units=True)

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "")
            if unit == "bytes":
                return self._bytes.render(task)
            total = "?" if task.total is None else str(int(task.total))
            return Text(f"{int(task.completed)}/{total} {unit}".rstrip(), style="progress.download")

    class Rate(ProgressColumn):
        def __init__(self) -> None:
            super().__init__()
            self._speed = TransferSpeedColumn()

        def render(self, task: Task) -> Text:
            unit = task.fields.get("unit", "")
            if unit == "bytes":
                return self._speed.render(task)
            speed = task.finished_speed or task.speed
            return Text(f"{speed:.1f} {unit}/s" if speed else "?", style="progress.data.speed")

    _COLUMNS = (Amount, Rate)
    return _COLUMNS


@contextlib.contextmanager
def cancel_on_signals(token: CancelToken) -> Iterator[CancelToken]:
    """While inside: the first SIGINT/SIGTERM cancels ``token``; another raises KeyboardInterrupt. Main thread only
    (elsewhere the signals are left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield token
        return

    def handler(signum: int, _frame: object) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel(f"interrupted ({signal.Signals(signum).name})")

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield token
    finally:
        for s, h in old.items():
            signal.signal(s, h)


__all__ = ["PLAIN_INTERVAL_S", "EventsView", "cancel_on_signals"]
