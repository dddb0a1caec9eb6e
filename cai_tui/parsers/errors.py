"""The one exception every parser raises for unexpected text."""

from __future__ import annotations

from collections.abc import Iterator

_MAX_QUOTE = 160


class ParseError(ValueError):
    """The text is not what the parser expected. ``str(e)`` says what was expected and quotes the offending line.

    ``line_no`` (1-based) and ``line`` are set when one line is to blame.
    """

    def __init__(self, message: str, *, line_no: int | None = None, line: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line_no = line_no
        self.line = line

    def __str__(self) -> str:
        return self.message


def quote(line: str) -> str:
    """``line`` as it appears in messages: repr, clipped."""
    text = line.rstrip("\r\n")
    if len(text) > _MAX_QUOTE:
        text = text[:_MAX_QUOTE] + "…"
    return repr(text)


def at_line(what: str, line_no: int, line: str) -> ParseError:
    """A ParseError blaming one line: ``"<what>: line 3: 'the line'"``."""
    return ParseError(f"{what}: line {line_no}: {quote(line)}", line_no=line_no, line=line)


def numbered(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line ending) for every line of ``text``."""
    yield from enumerate(text.splitlines(), 1)


def first_content_line(text: str) -> tuple[int, str] | None:
    """The first line that is not blank, or None for empty/blank text."""
    for n, line in numbered(text):
        if line.strip():
            return n, line
    return None


def nothing_found(what: str, text: str) -> ParseError:
    """A ParseError for text without the expected content: quotes the first non-blank line, or says it was empty."""
    first = first_content_line(text)
    if first is None:
        return ParseError(f"{what}: the output is empty")
    return at_line(what, *first)
