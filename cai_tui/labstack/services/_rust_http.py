"""How Rust's reqwest (over hyper-util) describes a failed request, from the real Python exception.

``reqwest::Error``'s ``{:?}``/``{:#?}`` (what guest-components puts in its error strings) and its Display chain
(what anyhow prints as ``Caused by:``), filled with the real errno, the real URL and the real failure kind.
"""

from __future__ import annotations

import errno as errno_mod
import socket
from urllib.parse import urlsplit

import httpx

from ._log import os_error_text, rust_debug_str

_IO_KIND = {
    errno_mod.ECONNREFUSED: "ConnectionRefused",
    errno_mod.ECONNRESET: "ConnectionReset",
    errno_mod.EHOSTUNREACH: "HostUnreachable",
    errno_mod.ENETUNREACH: "NetworkUnreachable",
    errno_mod.ETIMEDOUT: "TimedOut",
    errno_mod.EADDRNOTAVAIL: "AddrNotAvailable",
}


def url_problem(url: str) -> str | None:
    """reqwest's builder error source for a URL it cannot send to (None when the URL is fine)."""
    parts = urlsplit(url)
    if "://" not in url or not parts.scheme:
        return "RelativeUrlWithoutBase"
    if parts.scheme not in ("http", "https"):
        return "BadScheme"
    if not parts.hostname:
        return "EmptyHost"
    return None


def _is_dns(exc: BaseException) -> bool:
    cur: BaseException | None = exc
    while cur is not None:
        if isinstance(cur, socket.gaierror):
            return True
        cur = cur.__cause__ or cur.__context__
    text = str(exc).lower()
    return "name or service not known" in text or "temporary failure in name resolution" in text


def _failure(exc: BaseException) -> tuple[str, int, str]:
    """(kind, errno, text): kind is timeout | dns | connect | other."""
    if isinstance(exc, httpx.TimeoutException) or isinstance(exc.__cause__, httpx.TimeoutException):
        return "timeout", 0, "operation timed out"
    if _is_dns(exc):
        _, text = os_error_text(exc)
        return "dns", 0, text
    code, text = os_error_text(exc)
    if code:
        return "connect", code, text
    return "other", 0, str(exc)


def debug(url: str, exc: BaseException, *, pretty: bool) -> str:
    """``reqwest::Error`` Debug for a request to ``url`` that failed with ``exc``."""
    problem = url_problem(url)
    if problem:
        if pretty:
            return f"reqwest::Error {{\n    kind: Builder,\n    source: {problem},\n}}"
        return f"reqwest::Error {{ kind: Builder, source: {problem} }}"
    kind, code, text = _failure(exc)
    u = rust_debug_str(url)
    if kind == "timeout":
        source = "TimedOut"
    elif kind == "dns":
        msg = rust_debug_str(f"failed to lookup address information: {text}")
        source = (
            f'hyper_util::client::legacy::Error(Connect, ConnectError("dns error", Custom {{ kind: Uncategorized, '
            f"error: {msg} }}))"
        )
        if pretty:
            source = (
                "hyper_util::client::legacy::Error(\n        Connect,\n        ConnectError(\n"
                '            "dns error",\n            Custom {\n                kind: Uncategorized,\n'
                f"                error: {msg},\n            }},\n        ),\n    )"
            )
    elif kind == "connect":
        io_kind = _IO_KIND.get(code, "Uncategorized")
        m = rust_debug_str(text)
        source = (
            f'hyper_util::client::legacy::Error(Connect, ConnectError("tcp connect error", Os {{ code: {code}, '
            f"kind: {io_kind}, message: {m} }}))"
        )
        if pretty:
            source = (
                "hyper_util::client::legacy::Error(\n        Connect,\n        ConnectError(\n"
                f'            "tcp connect error",\n            Os {{\n                code: {code},\n'
                f"                kind: {io_kind},\n                message: {m},\n            }},\n"
                "        ),\n    )"
            )
    else:
        source = f"hyper::Error(IncompleteMessage, {rust_debug_str(text)})"
    if pretty:
        return f"reqwest::Error {{\n    kind: Request,\n    url: {u},\n    source: {source},\n}}"
    return f"reqwest::Error {{ kind: Request, url: {u}, source: {source} }}"


def display_chain(url: str, exc: BaseException) -> list[str]:
    """The Display chain of that error (``error sending request for url (…)`` and its sources)."""
    problem = url_problem(url)
    if problem:
        text = {
            "RelativeUrlWithoutBase": "relative URL without a base",
            "BadScheme": "URL scheme is not allowed",
            "EmptyHost": "empty host",
        }[problem]
        return ["builder error", text]
    kind, code, text = _failure(exc)
    head = f"error sending request for url ({url})"
    if kind == "timeout":
        return [head, "operation timed out"]
    if kind == "dns":
        return [
            head,
            "client error (Connect)",
            f"dns error: failed to lookup address information: {text}",
            f"failed to lookup address information: {text}",
        ]
    if kind == "connect":
        return [
            head,
            "client error (Connect)",
            f"tcp connect error: {text} (os error {code})",
            f"{text} (os error {code})",
        ]
    return [head, text]
