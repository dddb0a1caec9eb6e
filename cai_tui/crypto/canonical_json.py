"""RFC 8785 JSON Canonicalization Scheme (JCS): the bytes Trustee's attestation service hashes.

Upstream hashes structured runtime data with ``serde_json_canonicalizer`` (attestation-service ``lib.rs``); the
KBS client must hash the very same bytes, so this module is the one canonicalizer of cai-tui (the client, the lab
Trustee and the lab instance's confidential-data-hub all use it).

Rules (RFC 8785 §3.2): object members sorted by their names as UTF-16 code units; no whitespace; strings with the
minimal JSON escaping (``\\"``, ``\\\\``, ``\\b \\f \\n \\r \\t``, other controls as ``\\u00xx`` lower-case, everything
else literal); numbers serialised as ECMAScript's ``Number.prototype.toString`` does for IEEE 754 doubles; UTF-8.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MAX_DEPTH = 512


class CanonicalJsonError(ValueError):
    """A value RFC 8785 cannot represent (NaN, Infinity, a lone surrogate, a non-string key, another type)."""


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical form of ``value`` (dict/list/tuple/str/int/float/bool/None) as UTF-8 bytes."""
    out: list[str] = []
    _write(value, out, 0)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate in a string
        raise CanonicalJsonError(f"string is not valid Unicode (lone surrogate): {exc}") from None


def es_number(value: float | int) -> str:
    """ECMAScript ``Number.prototype.toString`` of ``value`` taken as an IEEE 754 double (RFC 8785 §3.2.2.3)."""
    try:
        x = float(value)
    except OverflowError:
        raise CanonicalJsonError(f"the integer {value} is beyond an IEEE 754 double") from None
    if math.isnan(x) or math.isinf(x):
        raise CanonicalJsonError("NaN and Infinity have no JSON form")
    if x == 0:
        return "0"  # -0 too
    sign = "-" if x < 0 else ""
    # repr gives the shortest digits that round-trip, which is what ECMAScript asks for.
    mantissa, _, exp_text = repr(abs(x)).partition("e")
    int_part, _, frac_part = mantissa.partition(".")
    full = int_part + frac_part
    digits = full.lstrip("0")
    # n: where the decimal point sits after the first n digits (ECMAScript's n, with k = len(digits)).
    n = len(int_part) + int(exp_text or 0) - (len(full) - len(digits))
    digits = digits.rstrip("0") or "0"
    k = len(digits)
    if k <= n <= 21:
        return sign + digits + "0" * (n - k)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    exp = n - 1
    exp_str = f"e+{exp}" if exp >= 0 else f"e-{-exp}"
    if k == 1:
        return sign + digits + exp_str
    return sign + digits[0] + "." + digits[1:] + exp_str


def _string(s: str) -> str:
    parts = ['"']
    for ch in s:
        esc = _SHORT_ESCAPES.get(ch)
        if esc is not None:
            parts.append(esc)
        elif ch < " ":
            parts.append(f"\\u{ord(ch):04x}")
        else:
            parts.append(ch)
    parts.append('"')
    return "".join(parts)


def _utf16_key(name: str) -> bytes:
    # Big-endian UTF-16 bytes compare as the code units do (surrogates allowed through for sorting only).
    return name.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[str], depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise CanonicalJsonError("JSON nested too deeply")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, (int, float)):
        out.append(es_number(value))
    elif isinstance(value, Mapping):
        names = list(value)
        if not all(isinstance(k, str) for k in names):
            raise CanonicalJsonError("object member names must be strings")
        out.append("{")
        for i, name in enumerate(sorted(names, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_string(name))
            out.append(":")
            _write(value[name], out, depth + 1)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise CanonicalJsonError(f"{type(value).__name__} has no JSON form")
