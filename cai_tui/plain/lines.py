"""Plain mode without a terminal (``ssh -T``, a serial console's line discipline, a pipe): the same three prompts as
:class:`~.ask.Asker`, one line in, one line out, no cursor control — choices are numbered and answered by number or
value. End of input aborts (nothing is written), as Ctrl-D does on a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from .ask import Aborted, Asker
from .texts import say


class LineAsker(Asker):
    def __init__(self, lang: str, stdin: TextIO | None = None, stdout: TextIO | None = None) -> None:
        super().__init__(lang)
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout

    def _line(self, prompt: str) -> str:
        self._out.write(prompt)
        self._out.flush()
        line = self._in.readline()
        if not line:
            raise Aborted
        self._out.write("\n")  # the answer was not echoed onto the prompt's line
        return line.rstrip("\r\n")

    def text(self, message: str, instruction: str | None = None) -> str:
        extra = f" {instruction}" if instruction else ""
        return self._line(f"? {message}{extra} ").strip()

    def select(self, message: str, choices: Sequence[tuple[str, str]], default: str | None = None) -> str:
        values = [value for _title, value in choices]
        fallback = default if default in values else values[0]
        self._out.write(f"? {message}\n")
        for n, (title, value) in enumerate(choices, 1):
            mark = "*" if value == fallback else " "
            self._out.write(f"  {mark}{n}) {title}\n")
        while True:
            answer = self._line(say("line_select_hint", self.lang, n=len(choices)) + " ").strip()
            if not answer:
                return fallback
            if answer.isdigit() and 1 <= int(answer) <= len(choices):
                return values[int(answer) - 1]
            if answer in values:
                return answer
            self._out.write(say("line_select_again", self.lang, n=len(choices)) + "\n")

    def confirm(self, message: str, default: bool) -> bool:
        hint = "[Y/n]" if default else "[y/N]"
        while True:
            answer = self._line(f"? {message} {hint} ").strip().lower()
            if not answer:
                return default
            if answer in ("y", "yes", "是"):
                return True
            if answer in ("n", "no", "否"):
                return False
            self._out.write(say("line_confirm_again", self.lang) + "\n")


def has_terminal() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
