"""The run's journal: one JSON line per event (``<state dir>/uploads/<hash>/journal.jsonl``), replayed on resume."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def state_root() -> Path:
    from ... import paths

    return paths.state_dir() / "uploads"


def run_id(bucket: str, prefix: str, src_dir: str) -> str:
    text = f"{bucket}\n{prefix}\n{os.path.realpath(src_dir)}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


@dataclass
class JournalState:
    conf: str | None = None
    dirivs: dict[str, bytes] = field(default_factory=dict)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {size, crc, src_size, src_mtime_ns}
    mpu: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {upload_id, file_id, blocks, src_*}
    parts: dict[tuple[str, str], dict[int, tuple[str, int, int]]] = field(default_factory=dict)
    runs: int = 0


class Journal:
    """Append-only JSON lines; the first is the header naming the upload. A torn last line is ignored."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._lock = threading.Lock()
        self.state = JournalState()
        self._fh: Any = None

    def open(self) -> JournalState:
        lines = self._read()
        if lines and {k: lines[0].get(k) for k in self.header} == self.header:
            for rec in lines[1:]:
                self._apply(rec)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:  # new, or another kind of upload to the same place: start over
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            self._write(self.header)
        os.chmod(self.path, 0o600)
        return self.state

    def _read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                break  # a torn write (the run was killed): everything before it counts
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def _apply(self, rec: dict[str, Any]) -> None:
        st = self.state
        t = rec.get("t")
        key = rec.get("key", "")
        if t == "run":
            st.runs += 1
        elif t == "conf":
            st.conf = rec["text"]
        elif t == "diriv":
            st.dirivs[rec["dir"]] = bytes.fromhex(rec["iv"])
        elif t == "done":
            st.done[key] = {k: rec.get(k) for k in ("size", "crc", "src_size", "src_mtime_ns")}
        elif t == "undone":
            st.done.pop(key, None)
        elif t == "mpu":
            st.mpu[key] = {k: rec.get(k) for k in ("upload_id", "file_id", "blocks", "src_size", "src_mtime_ns")}
        elif t == "part":
            st.parts.setdefault((key, rec["upload_id"]), {})[int(rec["n"])] = (
                rec["etag"],
                int(rec["size"]),
                int(rec["crc"]),
            )

    def _write(self, rec: dict[str, Any]) -> None:
        self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._fh.flush()

    def append(self, rec: dict[str, Any]) -> None:
        with self._lock:
            if self._fh is None:  # a request that ended after its run had stopped: nothing to record any more
                return
            self._write(rec)
            self._apply(rec)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
