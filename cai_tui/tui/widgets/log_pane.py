"""The live log pane: every output line of a run, in bounded memory, repainted in batches, searchable and savable.

Textual's ``Log`` refreshes (and starts a width-measuring thread) on every write and prunes a list from the front;
a run that streams a compose log at full speed would spend its time there. This pane keeps a ring buffer
(:data:`MAX_LINES`, with a count of the dropped ones), only marks itself dirty on a write and repaints at most
:data:`REPAINT_S` later, follows the tail unless the user scrolled up, and draws only the visible lines (Line API).
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.cache import LRUCache
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer
from textual.widgets import Input

from ..i18n import add_strings, t

MAX_LINES = 20_000
REPAINT_S = 1 / 30  # at most this often, however fast lines arrive
_CONTROL = re.compile("[\x00-\x1f\x7f]")

add_strings(
    {
        "log_search": ("Search", "搜索"),
        "log_next": ("Next match", "下一处"),
        "log_prev": ("Previous match", "上一处"),
        "log_copy": ("Copy", "复制"),
        "log_save": ("Save log", "保存日志"),
        "log_follow": ("Follow", "跟随末尾"),
        "log_search_placeholder": ("search the log (Enter: find, Esc: close)", "搜索日志（回车查找，Esc 关闭）"),
        "log_matches": ("{n} match(es) for “{query}”", "“{query}” 共 {n} 处匹配"),
        "log_no_match": ("No line holds “{query}”", "没有包含“{query}”的行"),
        "log_copied": ("Copied {n} line(s)", "已复制 {n} 行"),
        "log_saved": ("Log saved to {path}", "日志已保存到 {path}"),
        "log_save_failed": ("The log was not saved: {error}", "日志未保存：{error}"),
        "log_dropped": (
            "# {n} earlier line(s) were dropped: the pane keeps the last {max}",
            "# 已丢弃更早的 {n} 行：日志窗格只保留最后 {max} 行",
        ),
    }
)


def _clean(text: str) -> str:
    return _CONTROL.sub("�", text.expandtabs()) if not text.isprintable() else text


def _width(text: str) -> int:
    return len(text) if text.isascii() and text.isprintable() else cell_len(_clean(text))


class LogPane(ScrollView, can_focus=True):
    """Lines in a ring buffer of ``max_lines``; ``dropped`` counts those pushed out at the front."""

    BINDINGS = [
        Binding("slash", "search", "Search", id="log_search"),
        Binding("n", "next_match", "Next match", id="log_next"),
        Binding("N", "prev_match", "Previous match", id="log_prev", show=False),
        Binding("y", "copy", "Copy", id="log_copy"),
        Binding("s", "save", "Save log", id="log_save"),
        Binding("end", "follow", "Follow", id="log_follow", show=False),
    ]

    DEFAULT_CSS = """
    LogPane { background: $surface; color: $text; overflow: auto; }
    LogPane:focus { background-tint: $foreground 5%; }
    """

    class SearchRequested(Message):
        """``/`` was pressed: the panel around the pane opens its search input."""

    class Copied(Message):
        def __init__(self, text: str, lines: int) -> None:
            super().__init__()
            self.text, self.lines = text, lines

    class Saved(Message):
        def __init__(self, path: Path | None, error: str = "") -> None:
            super().__init__()
            self.path, self.error = path, error

    def __init__(
        self,
        max_lines: int = MAX_LINES,
        *,
        save_dir: Path | None = None,
        save_name: str = "run",
        lang: str = "en",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.max_lines = max_lines
        self.save_dir = save_dir
        self.save_name = save_name
        self.lang = lang
        self._lines: deque[str] = deque(maxlen=max_lines)
        self.written = 0  # every line ever written
        self._width = 0
        self._measured = 0  # lines (by absolute number) whose width is known
        self._shown_first = 0  # absolute number of the first line at the last repaint
        self._repaint: Timer | None = None
        self._cache: LRUCache[tuple[int, int], Strip] = LRUCache(512)
        self.repaints = 0
        self._base_style: Style | None = None
        # search
        self.search_query = ""
        self._matches: list[int] = []  # absolute line numbers holding the query
        self._scanned = 0  # absolute number up to which lines were searched
        self.match_index = -1
        self._search_gen = 0

    # --- the buffer -------------------------------------------------------------------------------------------------

    @property
    def dropped(self) -> int:
        return self.written - len(self._lines)

    @property
    def line_count(self) -> int:
        return len(self._lines)

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def write_line(self, text: str) -> None:
        self._lines.append(text)
        self.written += 1
        self._schedule()

    def write_lines(self, lines: Iterable[str]) -> None:
        batch = lines if isinstance(lines, (list, tuple)) else list(lines)
        self._lines.extend(batch)
        self.written += len(batch)
        self._schedule()

    def _schedule(self) -> None:
        if self._repaint is None and self.is_mounted:
            self._repaint = self.set_timer(REPAINT_S, self._flush, name="log-repaint")

    def clear(self) -> None:
        self._lines.clear()
        self.written = self._measured = self._shown_first = self._width = 0
        self._cache.clear()
        self._matches, self._scanned, self.match_index = [], 0, -1
        self.virtual_size = Size(0, 0)
        self.refresh()

    def _flush(self) -> None:
        """One repaint for everything written since the last: size, follow the tail, drop cached strips."""
        self._repaint = None
        first = self.dropped
        at_end = self.scroll_y >= self.max_scroll_y
        start = max(self._measured, first)
        if self.written > start:
            n = self.written - start
            widest = max(_width(line) for line in self._tail(n))
            self._width = max(self._width, widest)
            self._measured = self.written
        shifted = first - self._shown_first
        self._shown_first = first
        size = Size(self._width, len(self._lines))
        if size != self.virtual_size:  # once the buffer is full and no line is wider, no layout pass at all
            self.virtual_size = size
        if at_end:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        elif shifted:  # the lines in view moved up in the buffer: keep them in view
            self.scroll_to(y=max(0, self.scroll_y - shifted), animate=False, immediate=True, force=True)
        self.repaints += 1
        self.refresh()

    def _tail(self, n: int) -> Iterable[str]:
        lines = self._lines
        size = len(lines)
        for i in range(max(0, size - n), size):
            yield lines[i]

    def _line(self, absolute: int) -> str | None:
        index = absolute - self.dropped
        return self._lines[index] if 0 <= index < len(self._lines) else None

    # --- drawing ----------------------------------------------------------------------------------------------------

    @property
    def following(self) -> bool:
        return self.scroll_y >= self.max_scroll_y

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        rich_style = self._base_style
        if rich_style is None:  # DOMNode.rich_style walks the ancestors: once per style change, not once per line
            rich_style = self._base_style = self.rich_style
        index = scroll_y + y
        if index >= len(self._lines):
            return Strip.blank(width, rich_style)
        absolute = self.dropped + index
        key = (absolute, self._search_gen)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._strip(self._lines[index], absolute, rich_style)
            self._cache[key] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, rich_style).apply_offsets(scroll_x, index)

    def _strip(self, raw: str, absolute: int, base: Style) -> Strip:
        text = _clean(raw)
        query = self.search_query
        if not query or query.lower() not in text.lower():
            return Strip([Segment(text, base)], cell_len(text))
        current = self.match_index >= 0 and self._matches[self.match_index] == absolute
        hit = base + Style(reverse=True, bold=current, underline=current)
        segments = []
        lower, q = text.lower(), query.lower()
        pos = 0
        while (found := lower.find(q, pos)) >= 0:
            if found > pos:
                segments.append(Segment(text[pos:found], base))
            segments.append(Segment(text[found : found + len(q)], hit))
            pos = found + len(q)
        if pos < len(text):
            segments.append(Segment(text[pos:], base))
        return Strip(segments, cell_len(text))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._base_style = None
        self._cache.clear()

    # --- search -----------------------------------------------------------------------------------------------------

    def search(self, query: str) -> int:
        """Highlight ``query`` (case-insensitive) and go to its first match at or below the top of the view."""
        self.search_query = query
        self._matches, self._scanned, self.match_index = [], self.dropped, -1
        self._search_gen += 1
        self._scan()
        if self._matches:
            top = self.dropped + int(self.scroll_y)
            self.match_index = next((i for i, a in enumerate(self._matches) if a >= top), 0)
            self._show_match()
        self.refresh()
        return len(self._matches)

    def _scan(self) -> None:
        """Search the lines written since the last scan; forget matches that left the buffer."""
        first = self.dropped
        if self._matches and self._matches[0] < first:
            current = self._matches[self.match_index] if self.match_index >= 0 else None
            self._matches = [a for a in self._matches if a >= first]
            self.match_index = (
                self._matches.index(current) if current in self._matches else (0 if self._matches else -1)
            )
        q = self.search_query.lower()
        if not q:
            return
        start = max(self._scanned, first)
        for absolute in range(start, self.written):
            if q in self._lines[absolute - first].lower():
                self._matches.append(absolute)
        self._scanned = self.written

    @property
    def matches(self) -> list[int]:
        return list(self._matches)

    @property
    def current_match(self) -> str | None:
        if 0 <= self.match_index < len(self._matches):
            return self._line(self._matches[self.match_index])
        return None

    def move_match(self, step: int) -> bool:
        if not self.search_query:
            return False
        self._scan()
        if not self._matches:
            return False
        self.match_index = (self.match_index + step) % len(self._matches)
        self._search_gen += 1
        self._show_match()
        self.refresh()
        return True

    def _show_match(self) -> None:
        index = self._matches[self.match_index] - self.dropped
        height = max(1, self.scrollable_content_region.height)
        self.scroll_to(y=max(0, index - height // 2), animate=False, immediate=True, force=True)

    # --- copy and save ----------------------------------------------------------------------------------------------

    def visible_lines(self) -> list[str]:
        top = int(self.scroll_y)
        height = max(1, self.scrollable_content_region.height)
        lines = self._lines
        return [lines[i] for i in range(top, min(len(lines), top + height))]

    def text(self) -> str:
        """The whole buffer (what ``s`` saves), with a first line saying how many were dropped."""
        head = [t("log_dropped", self.lang, n=self.dropped, max=self.max_lines)] if self.dropped else []
        return "\n".join([*head, *self._lines]) + "\n"

    def save(self, path: Path) -> Path:
        """Write the buffer to ``path`` atomically (0600), passed through the redactor once more."""
        from ...recipe import REDACTOR
        from ...recipe.yaml_io import atomic_write

        atomic_write(path, REDACTOR.redact(self.text()).encode("utf-8"), mode=0o600)
        return path

    def default_save_path(self) -> Path:
        from ...paths import state_dir

        folder = self.save_dir if self.save_dir is not None else state_dir() / "logs"
        stamp = time.strftime("%Y%m%d-%H%M%S")
        return folder / f"{self.save_name}-{stamp}.log"

    # --- actions ----------------------------------------------------------------------------------------------------

    def action_search(self) -> None:
        self.post_message(self.SearchRequested())

    def action_next_match(self) -> None:
        self.move_match(1)

    def action_prev_match(self) -> None:
        self.move_match(-1)

    def action_follow(self) -> None:
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def action_copy(self) -> None:
        match = self.current_match
        lines = [match] if match is not None else self.visible_lines()
        text = "\n".join(lines)
        self.app.copy_to_clipboard(text)
        self.notify(t("log_copied", self.lang, n=len(lines)))
        self.post_message(self.Copied(text, len(lines)))

    def action_save(self) -> None:
        try:
            path = self.save(self.default_save_path())
        except OSError as e:
            self.notify(t("log_save_failed", self.lang, error=e), severity="error")
            self.post_message(self.Saved(None, str(e)))
            return
        self.notify(t("log_saved", self.lang, path=path))
        self.post_message(self.Saved(path))


class LogPanel(Vertical):
    """The pane and its search input (``/`` opens it, Enter finds, Escape closes)."""

    DEFAULT_CSS = """
    LogPanel { height: 1fr; }
    LogPanel > LogPane { height: 1fr; }
    LogPanel > Input { display: none; height: 3; }
    LogPanel.-searching > Input { display: block; }
    """

    def __init__(self, pane: LogPane, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.pane = pane

    def compose(self):  # type: ignore[no-untyped-def]
        yield self.pane
        yield Input(placeholder=t("log_search_placeholder", self.pane.lang), id="log-search")

    @property
    def search_input(self) -> Input:
        return self.query_one("#log-search", Input)

    def set_lang(self, lang: str) -> None:
        self.pane.lang = lang
        self.search_input.placeholder = t("log_search_placeholder", lang)

    def on_log_pane_search_requested(self, event: LogPane.SearchRequested) -> None:
        event.stop()
        self.add_class("-searching")
        self.search_input.value = self.pane.search_query
        self.search_input.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "log-search":
            return
        event.stop()
        query = event.value.strip()
        n = self.pane.search(query) if query else 0
        if query:
            key = "log_matches" if n else "log_no_match"
            self.notify(t(key, self.pane.lang, n=n, query=query), severity="information" if n else "warning")
        self.remove_class("-searching")
        self.pane.focus()

    def on_key(self, event: events.Key) -> None:
        if event.key == "escape" and self.has_class("-searching"):
            event.stop()  # closes the search only; the screen's own escape does not run
            self.remove_class("-searching")
            self.pane.focus()
