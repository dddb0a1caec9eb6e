"""Log line formats of the upstream components the stand-ins replace, and the renderings of their error values.

* Rust ``tracing_subscriber::fmt`` (AA, CDH, TNG): ``2025-03-04T07:49:06.123456Z  WARN target: message``;
* Rust ``Debug`` of strings and anyhow chains (``msg\\n\\nCaused by:\\n    0: …``), and of a panic;
* ossfs's ``s3fs_low_logprn`` (``2025-03-04T07:49:06.123Z [ERR] curl.cpp:RequestPerform(2422): …``);
* vLLM's logger (``INFO 03-04 07:49:06 api_server.py:212] …``) and uvicorn's (``INFO:     …``).

Every line goes through :func:`emit`, which blanks the registered secrets, so no secret reaches a log even by
accident (an echo of a request, an error body).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from typing import TextIO

_SECRETS: set[str] = set()
_LOCK = threading.Lock()
REDACTED = "******"


def add_secret(value: str | bytes | None) -> None:
    """Never print this value (AccessKey secret, STS token, model key); short values are ignored (too common)."""
    if value is None:
        return
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    for candidate in {text, text.strip()}:
        if len(candidate) >= 4:
            with _LOCK:
                _SECRETS.add(candidate)


def redact(text: str) -> str:
    with _LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    return text


def emit(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` (one or more lines) to stderr (or ``stream``), redacted, flushed."""
    out = sys.stderr if stream is None else stream
    out.write(redact(text).rstrip("\n") + "\n")
    out.flush()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def rust_ts() -> str:
    """``tracing_subscriber``'s default timer: RFC 3339 with microseconds, UTC."""
    return _now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def tracing_line(level: str, target: str, message: str) -> str:
    """``tracing_subscriber::fmt`` default format without ANSI colours (not a TTY)."""
    return f"{rust_ts()} {level.upper():>5} {target}: {message}"


def rust_debug_str(text: str) -> str:
    """Rust's ``{:?}`` of a ``String``: quoted, with ``\\``, ``"`` and control characters escaped."""
    out = ['"']
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def anyhow_debug(chain: Sequence[str]) -> str:
    """``{:?}`` of an ``anyhow::Error`` whose chain (outermost first) is ``chain`` — what ``main`` returning
    ``Err`` prints after ``Error: `` and what ``tracing::error!(?error)`` renders."""
    head, causes = chain[0], list(chain[1:])
    if not causes:
        return head
    if len(causes) == 1:
        return f"{head}\n\nCaused by:\n    {causes[0]}"
    lines = [head, "", "Caused by:"]
    lines += [f"    {i}: {c}" for i, c in enumerate(causes)]
    return "\n".join(lines)


def rust_panic(location: str, message: str) -> str:
    """What the default panic hook prints (Rust ≥ 1.73); the process then exits with 101."""
    return (
        f"\nthread 'main' panicked at {location}:\n{message}\n"
        "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
    )


RUST_PANIC_EXIT = 101


def error_information_debug(body: str, *, pretty: bool) -> str | None:
    """kbs-types ``ErrorInformation`` ``{:?}``/``{:#?}`` of a KBS error body, or None when the body is not one
    (reqwest's ``json::<ErrorInformation>()`` would then fail to decode it)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("type"), str) or not isinstance(doc.get("detail"), str):
        return None
    t, d = rust_debug_str(doc["type"]), rust_debug_str(doc["detail"])
    if pretty:
        return f"ErrorInformation {{\n    error_type: {t},\n    detail: {d},\n}}"
    return f"ErrorInformation {{ error_type: {t}, detail: {d} }}"


def ossfs_ts() -> str:
    now = _now()
    return now.strftime("%Y-%m-%dT%H:%M:%S") + f".{now.microsecond // 1000:03d}Z "


def ossfs_line(level: str, file: str, func: str, line: int, message: str) -> str:
    """``s3fs_low_logprn`` in the foreground: ``<time> [ERR] curl.cpp:RequestPerform(2422): …``."""
    return f"{ossfs_ts()}[{level}] {file}:{func}({line}): {message}"


def vllm_line(level: str, file: str, lineno: int, message: str) -> str:
    """vLLM's ``NewLineFormatter``: ``INFO 03-04 07:49:06 api_server.py:212] message``."""
    stamp = dt.datetime.now().strftime("%m-%d %H:%M:%S")
    return f"{level} {stamp} {file}:{lineno}] {message}"


def uvicorn_line(level: str, message: str) -> str:
    """uvicorn's default formatter: the level name, a colon, padded to 9 columns."""
    return f"{(level + ':'):<9} {message}"


def os_error_text(exc: BaseException) -> tuple[int, str]:
    """(errno, strerror) of an OSError somewhere in ``exc``'s cause chain; (0, str(exc)) if there is none."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno:
            return cur.errno, cur.strerror or os.strerror(cur.errno)
        for arg in getattr(cur, "args", ()):
            if isinstance(arg, OSError) and arg.errno:
                return arg.errno, arg.strerror or os.strerror(arg.errno)
        cur = cur.__cause__ or cur.__context__
    return 0, str(exc)


def lines(items: Iterable[str]) -> str:
    return "\n".join(items)
