"""A transfer's progress (``progress`` events): a bar, what moves, how much of how much, the rate and the ETA.

The rate is measured over the last few seconds of events (not since the start), so a stalled upload shows a falling
rate and no ETA rather than a hopeful one.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from ...events import Event
from ..i18n import add_strings, t

WINDOW_S = 3.0

add_strings(
    {
        "xfer_rate": ("{rate}/s", "{rate}/秒"),
        "xfer_eta": ("ETA {eta}", "剩余 {eta}"),
        "xfer_done": ("done", "完成"),
    }
)


def human(n: float, unit: str) -> str:
    """``n`` of ``unit`` for a person: bytes in KiB/MiB/GiB, anything else as a count."""
    if unit != "bytes":
        return f"{n:,.0f} {unit}".strip()
    for name, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {name}"
    return f"{n:.0f} B"


def clock(seconds: float) -> str:
    s = int(seconds + 0.5)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


@dataclass
class RateMeter:
    """``done`` samples over a sliding window: the rate (units/s) and the time left."""

    window_s: float = WINDOW_S
    samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, done: int, at: float | None = None) -> None:
        now = time.monotonic() if at is None else at
        if self.samples and done < self.samples[-1][1]:  # restarted (a retry): measure afresh
            self.samples.clear()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > self.window_s:
            self.samples.popleft()

    @property
    def rate(self) -> float | None:
        if len(self.samples) < 2:
            return None
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else None

    def eta(self, total: int | None) -> float | None:
        rate = self.rate
        if total is None or not rate or rate <= 0 or not self.samples:
            return None
        return max(0.0, (total - self.samples[-1][1]) / rate)


class TransferBar(Horizontal):
    """Hidden until the first ``progress`` event; then the latest transfer's bar and its figures."""

    DEFAULT_CSS = """
    TransferBar { height: 1; display: none; }
    TransferBar.-active { display: block; }
    TransferBar > ProgressBar { width: 32; }
    TransferBar > ProgressBar > Bar { width: 20; }
    TransferBar > Static { width: 1fr; color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None, lang: str = "en") -> None:
        super().__init__(id=id)
        self.lang = lang
        self.meters: dict[str, RateMeter] = {}
        self.key = ""
        self.last: Event | None = None

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=None, show_eta=False, id="xfer-bar")
        yield Static("", id="xfer-text")

    def update_from(self, event: Event) -> None:
        """Show ``event`` (a ``progress`` event): the bar follows the transfer it names."""
        key = f"{event.step}|{event.source}|{event.unit}"
        meter = self.meters.setdefault(key, RateMeter())
        meter.add(event.done or 0, _monotonic_at(event))
        self.key, self.last = key, event
        self.add_class("-active")
        bar = self.query_one(ProgressBar)
        bar.update(total=shown_total(event), progress=event.done or 0)
        self.query_one("#xfer-text", Static).update(self.describe())

    def describe(self) -> str:
        event = self.last
        if event is None:
            return ""
        meter = self.meters[self.key]
        what = " ".join(x for x in (event.source, event.text) if x)
        total = shown_total(event)
        done = human(event.done or 0, event.unit)
        amount = f"{done} / {human(total, event.unit)}" if total else done
        parts = [p for p in (what, amount) if p]
        if total and (event.done or 0) >= total:
            parts.append(t("xfer_done", self.lang))
        else:
            rate = meter.rate
            if rate is not None:
                parts.append(t("xfer_rate", self.lang, rate=human(rate, event.unit)))
            eta = meter.eta(event.total)
            if eta is not None:
                parts.append(t("xfer_eta", self.lang, eta=clock(eta)))
        return " · ".join(parts)


def shown_total(event: Event) -> int | None:
    """The total a progress event is shown against: never less than what is done (a producer whose estimate fell
    short, e.g. a manifest written after the model, shows the real amount rather than ``324.6/323.7 KiB``)."""
    if not event.total:
        return event.total
    return max(event.total, event.done or 0)


def _monotonic_at(event: Event) -> float:
    """The event's wall-clock time on the monotonic clock (a child's events carry the time they were made)."""
    return time.monotonic() - max(0.0, time.time() - event.at)
