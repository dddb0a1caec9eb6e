"""The summary returned by tree operations.

Progress is reported through an :data:`cai_tui.events.EventSink` (``progress=``): ``progress`` events whose ``done``
is the running total of plaintext bytes of the whole operation (of the one file for the single-file functions),
``total`` the expected bytes where known, ``unit`` ``bytes`` and ``text`` the plaintext path (relative to the tree
root) being processed; at least one per regular file and one after every 1 MiB chunk (per finished part with
workers > 1).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TreeStats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    fifos: int = 0
    plain_bytes: int = 0
    cipher_bytes: int = 0
    seconds: float = 0.0

    @property
    def mb_per_s(self) -> float:
        return self.plain_bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0
