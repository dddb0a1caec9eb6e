"""Drive the installed ``cai-tui`` on a real pseudo-terminal: send keys, read what it prints.

A prompt_toolkit prompt (questionary) switches bracketed paste on when it starts reading keys, once per prompt, so
counting that sequence tells when the next prompt waits for input: keys are sent only then (never into the
terminal's cooked mode between prompts). Cursor-position requests get an answer as a terminal would give.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?<=>]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]|\r")
PROMPT_ON = b"\x1b[?2004h"  # a prompt starts reading keys
CPR = b"\x1b[6n"
ENTER, DOWN, CTRL_C, CTRL_D = "\r", "\x1b[B", "\x03", "\x04"


def cai_tui() -> list[str]:
    """The installed console script beside this Python (the package's entry point), else the module."""
    script = Path(sys.executable).with_name("cai-tui")
    return [str(script)] if script.exists() else [sys.executable, "-m", "cai_tui.cli.main"]


class Term:
    def __init__(
        self, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, cols: int = 80, rows: int = 24
    ):
        self.master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows), **(env or {})}
        self.proc = subprocess.Popen(
            [*cai_tui(), *args], stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=full_env, start_new_session=True
        )
        os.close(slave)
        self.raw = b""
        self.sent = 0  # prompts answered so far

    # --- reading -------------------------------------------------------------------------------------

    def _pump(self, timeout: float) -> bool | None:
        """Read what is there (True), nothing yet (False), or the end (None)."""
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return False
        try:
            data = os.read(self.master, 65536)
        except OSError:  # EIO: the program closed the terminal
            return None
        if not data:
            return None
        if CPR in data:
            os.write(self.master, b"\x1b[1;1R" * data.count(CPR))
        self.raw += data
        return True

    def wait(self, cond: Callable[[], bool], timeout: float = 15) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError(f"waited {timeout}s; the terminal shows:\n{self.text()[-3000:]}")
            if self._pump(0.05) is None and not cond():
                raise EOFError(f"the program ended; the terminal shows:\n{self.text()[-3000:]}")

    def wait_quiet(self, quiet: float = 0.5, timeout: float = 15) -> None:
        """Until nothing was printed for ``quiet`` seconds."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._pump(quiet) is False:
                return
        raise TimeoutError(self.text()[-3000:])

    def text(self) -> str:
        return ANSI.sub("", self.raw.decode("utf-8", "replace"))

    def prompt(self) -> str:
        """The text of the prompt now waiting (everything since it started), its lines joined: a message longer
        than the terminal is wrapped, and a pattern should not have to guess where."""
        start = self.raw.rfind(PROMPT_ON)
        shown = ANSI.sub("", self.raw[start:].decode("utf-8", "replace")) if start >= 0 else ""
        return shown.replace("\n", "")

    # --- answering -----------------------------------------------------------------------------------

    def next_prompt(self, timeout: float = 15) -> bool:
        """Wait for the next prompt; False when the program ended instead."""
        try:
            self.wait(lambda: self.raw.count(PROMPT_ON) > self.sent or self.proc.poll() is not None, timeout)
        except EOFError:
            return False
        if self.raw.count(PROMPT_ON) <= self.sent:
            return False
        while self._pump(0.03):  # the rest of the prompt's first frame
            pass
        return True

    def answer(self, keys: str) -> None:
        self.sent += 1
        os.write(self.master, keys.encode("utf-8"))

    def send(self, keys: str) -> None:
        os.write(self.master, keys.encode("utf-8"))

    def drive(
        self,
        rules: Sequence[tuple[str, str]] = (),
        otherwise: Callable[[str], str] = lambda _prompt: ENTER,
        max_prompts: int = 400,
    ) -> list[str]:
        """Answer every prompt until the program ends: while the next rule's pattern matches the prompt, that rule
        gives the keys (each rule once, in order); any other prompt gets ``otherwise(prompt)``, Enter by default.
        Returns the prompts seen."""
        todo = list(rules)
        seen: list[str] = []
        while len(seen) < max_prompts and self.next_prompt():
            shown = self.prompt()
            seen.append(shown)
            if todo and re.search(todo[0][0], shown):
                self.answer(todo.pop(0)[1])
            else:
                self.answer(otherwise(shown))
        assert not todo, f"these prompts never came: {todo}\n{self.text()[-3000:]}"
        return seen

    def finish(self, timeout: float = 15) -> int:
        end = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < end:
            self._pump(0.05)
        while self._pump(0.05):
            pass
        try:
            return self.proc.wait(timeout=1)
        finally:
            self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
        try:
            os.close(self.master)
        except OSError:
            pass
