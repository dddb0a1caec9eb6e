"""The objects of an upload and the progress over them."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from ...events import EventSink, progress
from .options import SOURCE
from .tree import LocalFile


@dataclass
class _Obj:
    key: str
    size: int  # object size
    label: str  # what the progress line shows
    src: LocalFile | None = None  # the (plaintext) file
    data: bytes | None = None  # small metadata objects (gocryptfs.diriv, .name, gocryptfs.conf)
    encrypted: bool = False

    @property
    def counts_as_file(self) -> bool:
        return self.src is not None


class _Progress:
    """Thread-safe byte/file counters; a ``progress`` event to ``fn`` at most every ``interval`` seconds (and always
    for the last update)."""

    def __init__(self, fn: EventSink | None, bytes_total: int, files_total: int, interval: float = 0.1) -> None:
        self.fn = fn
        self.interval = interval
        self.bytes_total = bytes_total
        self.files_total = files_total
        self._lock = threading.Lock()
        self._committed = 0
        self._inflight: dict[str, int] = {}
        self.files_done = 0
        self.uploaded = 0
        self._last = 0.0

    def advance(self, key: str, done_in_object: int, label: str) -> None:
        with self._lock:
            self._inflight[key] = done_in_object
        self._emit(label)

    def finish(self, obj: _Obj, uploaded: bool) -> None:
        with self._lock:
            self._inflight.pop(obj.key, None)
            self._committed += obj.size
            if uploaded:
                self.uploaded += obj.size
            if obj.counts_as_file:
                self.files_done += 1
        self._emit(obj.label)

    def _emit(self, label: str, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        with self._lock:
            done = self._committed + sum(self._inflight.values())
            last = self.files_done == self.files_total and done >= self.bytes_total
            if not (force or last or now - self._last >= self.interval):
                return
            self._last = now
            files_done = self.files_done
        files = {"files_done": files_done, "files_total": self.files_total}
        self.fn(progress(min(done, self.bytes_total), self.bytes_total, source=SOURCE, text=label, data=files))

    def emit(self, label: str) -> None:
        self._emit(label, force=True)
