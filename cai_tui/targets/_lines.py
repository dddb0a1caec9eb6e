"""Bytes in, whole lines out: the one line splitter every target streams through."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

from .base import LineCallback

T = TypeVar("T")


class LineSplitter:
    """Decodes a byte stream (UTF-8, bad bytes replaced) and hands complete lines to ``on_line``.

    ``text`` is everything fed so far; the last, unterminated line is passed on at :meth:`close`.
    """

    def __init__(self, stream: str, on_line: LineCallback | None) -> None:
        self.stream = stream
        self.on_line = on_line
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._chunks: list[str] = []
        self._partial = ""

    def feed(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if not text:
            return
        self._chunks.append(text)
        if self.on_line is None:
            return
        pending = self._partial + text
        *lines, self._partial = pending.split("\n")
        for line in lines:
            self.on_line(self.stream, line.removesuffix("\r"))

    def close(self) -> None:
        tail = self._decoder.decode(b"", final=True)
        if tail:
            self._chunks.append(tail)
            self._partial += tail
        if self.on_line is not None and self._partial:
            self.on_line(self.stream, self._partial.removesuffix("\r"))
        self._partial = ""

    @property
    def text(self) -> str:
        return "".join(self._chunks)


def threadsafe_callback(on_line: LineCallback | None, loop: asyncio.AbstractEventLoop) -> LineCallback | None:
    """Wrap ``on_line`` so a worker thread delivers lines on the event loop's thread, in order."""
    if on_line is None:
        return None
    callback = on_line

    def deliver(stream: str, line: str) -> None:
        loop.call_soon_threadsafe(callback, stream, line)

    return deliver


def timeout_note(timeout: float) -> str:
    return f"cai-tui: timed out after {timeout:g}s; the command was killed\n"


def in_thread(fn: Callable[[], T], *, name: str) -> asyncio.Future[T]:
    """Run blocking ``fn`` on a thread of its own (not the shared default pool, which a few hung commands would fill)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[T] = loop.create_future()

    def settle(value: T | None, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)  # type: ignore[arg-type]

    def body() -> None:
        try:
            value = fn()
        except BaseException as exc:
            loop.call_soon_threadsafe(settle, None, exc)
        else:
            loop.call_soon_threadsafe(settle, value, None)

    threading.Thread(target=body, name=name, daemon=True).start()
    return fut


async def await_thread(fut: asyncio.Future[T], stop: threading.Event, *, grace: float = 5.0) -> T:
    """Await a thread's result; when cancelled, tell the thread to stop and give it ``grace`` seconds to clean up."""
    try:
        return await asyncio.shield(fut)
    except asyncio.CancelledError:
        stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait({fut}, timeout=grace)
        if fut.done() and not fut.cancelled():
            fut.exception()  # retrieved: the caller is gone, nobody else will look
        raise
