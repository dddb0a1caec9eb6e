"""The three prompts plain mode uses, over questionary: one line each, no full-screen UI.

Ctrl-C and Ctrl-D raise :class:`Aborted` (questionary's ``ask()`` would swallow them and answer None).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import questionary

from .texts import say


class Aborted(Exception):
    """The person pressed Ctrl-C or Ctrl-D: stop, write nothing."""


class Asker:
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def text(self, message: str, instruction: str | None = None) -> str:
        """The typed answer, stripped ('' when Enter was pressed on an empty line)."""
        answer = self._run(questionary.text(message, instruction=instruction, qmark="?"))
        return str(answer).strip()

    def select(self, message: str, choices: Sequence[tuple[str, str]], default: str | None = None) -> str:
        """The value of the chosen (title, value) pair; Enter alone takes ``default``."""
        options = [questionary.Choice(title, value) for title, value in choices]
        chosen = next((c for c in options if c.value == default), options[0])
        q = questionary.select(message, options, default=chosen, instruction=say("select_hint", self.lang))
        return str(self._run(q))

    def confirm(self, message: str, default: bool) -> bool:
        return bool(self._run(questionary.confirm(message, default=default)))

    @staticmethod
    def _run(q: questionary.Question) -> object:
        sys.stdout.flush()
        try:
            answer = q.unsafe_ask()
        except (KeyboardInterrupt, EOFError):
            raise Aborted from None
        if answer is None:
            raise Aborted
        return answer
