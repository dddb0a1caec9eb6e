"""Keeping a finished one-shot service's container up until it is told to stop."""

from __future__ import annotations

import signal
import threading
from types import FrameType


def stay_up() -> int:
    """Block until SIGTERM/SIGINT (the container lives on; its healthcheck reads the file the service wrote)."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while not stop.wait(3600):
        pass
    return 0
