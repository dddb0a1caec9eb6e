"""Commands of the guest rootfs steps, run on this host with their output streamed line by line as events.

Every command runs in its own session (process group): Ctrl-C or SIGTERM reach cai-tui only, which cancels the
:class:`~cai_tui.events.CancelToken`; :func:`run_streaming` then stops the child's whole group (SIGTERM, then SIGKILL
after a grace period) and raises :class:`~cai_tui.events.Cancelled`, so the caller's ``finally`` can unmount.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .. import events as ev

GRACE_S = 5.0


class RootfsError(Exception):
    """A rootfs step failed or was refused; ``exit_code`` 1 (failed) or 2 (input: the recipe or the image)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


@dataclass(frozen=True)
class Ran:
    argv: tuple[str, ...]
    rc: int
    lines: tuple[str, ...]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait in ((signal.SIGTERM, GRACE_S), (signal.SIGKILL, GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_streaming(
    argv: Sequence[str],
    *,
    sink: ev.EventSink = ev.discard,
    cancel: ev.CancelToken = ev.NEVER,
    step: str = "",
    source: str = "",
    ok: Callable[[int], bool] = lambda rc: rc == 0,
    env: dict[str, str] | None = None,
) -> Ran:
    """Run ``argv``; each output line (stdout and stderr merged, in order) goes to ``sink`` as it comes. Raises
    RootfsError when ``ok(rc)`` is false (the message holds the last lines), Cancelled when ``cancel`` is set."""
    cancel.check()
    sink(ev.note(f"$ {shlex.join(argv)}", step=step, source=source))
    try:
        proc = subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    except OSError as e:
        raise RootfsError(f"cannot run {argv[0]}: {e.strerror or e}") from None
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout

    def pump() -> None:
        for raw in iter(stdout.readline, b""):
            text = raw.decode("utf-8", "replace").rstrip("\r\n")
            lines.append(text)
            sink(ev.line(text, source=source, step=step))

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        while proc.poll() is None:
            if cancel.wait(0.05):
                _stop_group(proc)
                reader.join(1.0)
                cancel.check()
        reader.join(5.0)
    except BaseException:  # KeyboardInterrupt (a second Ctrl-C) or a cancellation: the child never outlives us
        _stop_group(proc)
        raise
    finally:
        stdout.close()
    rc = proc.returncode
    ran = Ran(tuple(argv), rc, tuple(lines))
    if not ok(rc):
        tail = "; ".join(ln for ln in lines[-4:] if ln.strip())
        raise RootfsError(f"`{shlex.join(argv)}` exited {rc}" + (f": {tail}" if tail else ""))
    return ran


def run_quiet(argv: Sequence[str], *, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """A short probe or bookkeeping command whose output is read, not shown (findmnt, losetup, debugfs)."""
    try:
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError:
        raise RootfsError(f"{argv[0]} is not installed: install it (e2fsprogs, util-linux, qemu-utils)") from None
    except subprocess.TimeoutExpired:
        raise RootfsError(f"`{shlex.join(argv)}` did not finish in {timeout:.0f} s") from None


__all__ = ["Ran", "RootfsError", "run_quiet", "run_streaming"]
