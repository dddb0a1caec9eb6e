"""The scrubber every byte of a support bundle passes through.

Two layers, applied in this order to each file's text:

0. PEM private key blocks, whole (so that a known key's lines do not break the block up first);
1. **Known values** — the recipe's resolved secrets (and anything else in the process-wide redaction set), each in
   the encodings it is likely to appear in: as is, URL-encoded (``quote``/``quote_plus``), JSON-escaped, base64
   (standard and URL-safe, padded or not, and the stable core of its encoding at each of the three byte alignments,
   so it is also found inside a longer base64 run such as a basic-auth header).
2. **Patterns** for secret-looking values nobody told us about: JWTs, Alibaba Cloud
   AccessKey ids (``LTAI…``) and STS ids/tokens (``STS.…``, ``CAIS…``), ``Authorization:`` and
   ``x-oss-security-token``/``x-acs-security-token`` headers, passwords in URLs (``scheme://user:PASS@``),
   ``KEY=VALUE`` / ``KEY: VALUE`` / ``"key": "value"`` / ``--key VALUE`` where the key names a secret (the key is
   kept), and long high-entropy tokens right after a word such as ``secret``/``password``/``token``.

Every removal becomes ``<redacted:CATEGORY>`` and is counted per category; the counts (never the values) go into
the bundle's README. Values that are secret *references* (``env:NAME``, ``file:PATH``, ``keyring:…``, ``prompt``) and
``${VAR}`` interpolations are not secrets and are kept, so the recipe and compose files stay readable.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections import Counter
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MIN_KNOWN = 4  # shorter known values are not replaced: they would mangle everything
MIN_B64_CORE = 8


def marker(category: str) -> str:
    return f"<redacted:{category}>"


# --- patterns ------------------------------------------------------------------------------------------------------

PEM_RE = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----"
    r"(?:.*?-----END \1PRIVATE KEY-----|[A-Za-z0-9+/=:,\-\s\\]*)",  # the whole block; a cut-off block to its end
    re.DOTALL,
)
JWT_RE = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
AK_ID_RE = re.compile(r"(?<![A-Za-z0-9])LTAI[0-9A-Za-z]{12,30}(?![A-Za-z0-9])")
STS_ID_RE = re.compile(r"(?<![A-Za-z0-9])STS\.[0-9A-Za-z]{10,}")
STS_TOKEN_RE = re.compile(r"(?<![A-Za-z0-9+/])CAIS[A-Za-z0-9+/=_-]{20,}")
AUTH_HEADER_RE = re.compile(
    r"(?im)((?:proxy-)?authorization|x-(?:oss|acs)-security-token|x-amz-security-token|cookie|set-cookie)"
    r"(\"?\s*[:=]\s*\"?)([^\r\n\"]+)"
)
URL_PASSWORD_RE = re.compile(r"(?i)(\b[a-z][a-z0-9+.\-]*://[^\s/@:\"'<>]+:)([^\s/@\"'<>]+)(@)")

_SECRET_WORD = (
    r"secret|passw(?:or)?d|passphrase|pwd|(?<![a-z])token(?!s|izer)|access_?key|accesskey|private_?key|privatekey"
    r"|api_?key|apikey|credentials?|security_?token|client_?key|model_oss_\w*key\w*|auth_?key"
)
_KEY = rf"[A-Za-z0-9_.\-]*(?i:{_SECRET_WORD})[A-Za-z0-9_.\-]*"
# KEY=VALUE (env files, shell, docker inspect "Env"), the value to the end of the line (or closing quote in JSON)
ENV_RE = re.compile(rf"(?m)(^|[\s\"'\[,;])({_KEY})(\s*=\s*)(?!<redacted:)([^\r\n\"]*(?:\"[^\r\n]*)?)")
# "key": "value" (JSON)
JSON_RE = re.compile(rf"(\"{_KEY}\"\s*:\s*)\"((?:[^\"\\\r\n]|\\.)*)\"")
# key: value (YAML, HTTP-ish headers, log lines)
YAML_RE = re.compile(rf"(?m)(^[ \t\-]*['\"]?{_KEY}['\"]?[ \t]*:[ \t]+)([^\r\n#]*?)([ \t]+#.*)?$")
# --key VALUE / --key=VALUE
FLAG_RE = re.compile(rf"(?<![\w-])(--?{_KEY})([ =])(?!-)(\"[^\"]*\"|'[^']*'|\S+)")
# a long token right after a secret word: "AccessKeySecret abcd…", "password is Xy7…"
CONTEXT_RE = re.compile(
    rf"(?i)((?:{_SECRET_WORD})[A-Za-z_]*[\s:=\"'(]{{1,4}}(?:is\s+|of\s+)?)([A-Za-z0-9+/_\-]{{16,}}={{0,2}})"
)

_REFERENCE_RE = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|keyring:\S+|prompt)$")
_INTERP_RE = re.compile(r"^\$\{?[A-Za-z_][A-Za-z0-9_]*(?:[:?\-][^}]*)?\}?$")
_BENIGN_KEY_RE = re.compile(
    r"(?i)(?:name|file|path|dir|method|type|policy|version|url|endpoint|ref|mode|length|len|limit|count|expir\w*)$"
)
_MARKERS_RE = re.compile(r"(?:<redacted:[a-z-]+>[\s,;]*)+")
_HARMLESS = {"", "null", "none", "~", "true", "false", "''", '""', "[]", "{}", "***", "|", ">"}


def _keep_value(value: str) -> bool:
    """Values of a secret-named key that are not secrets: references, interpolations, empties, our own markers."""
    v = value.strip().strip("\"'").strip()
    return (
        v.lower() in _HARMLESS or bool(_MARKERS_RE.fullmatch(v)) or bool(_REFERENCE_RE.match(v) or _INTERP_RE.match(v))
    )


def _benign_key(key: str) -> bool:
    """Keys that name a secret but hold something else: ``secret_name``, ``password_file``, ``token_url``…"""
    return bool(_BENIGN_KEY_RE.search(key.strip("\"' -")))


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    if not text:
        return 0.0
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values())


def looks_random(token: str) -> bool:
    """A long token that mixes letters and digits (or is very varied): a key, not a word or a path."""
    if len(token) < 16:
        return False
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return has_digit and has_alpha and entropy(token) >= 3.0


# --- known values and their encodings ------------------------------------------------------------------------------


def _b64_variants(raw: bytes) -> set[str]:
    out: set[str] = set()
    for enc in (base64.b64encode, base64.urlsafe_b64encode):
        full = enc(raw).decode()
        out.update({full, full.rstrip("=")})
        for shift in range(3):
            # the characters that depend on the value alone when it starts `shift` bytes into a longer stream
            text = enc(b"\0" * shift + raw).decode().rstrip("=")
            start = (shift * 8 + 5) // 6
            stop = ((shift + len(raw)) * 8) // 6
            core = text[start:stop]
            if len(core) >= MIN_B64_CORE:
                out.add(core)
    return out


def variants(value: str) -> set[str]:
    """The forms a secret value is likely to take in logs and files."""
    out = {value, quote(value, safe=""), quote(value), quote_plus(value), json.dumps(value)[1:-1]}
    out |= _b64_variants(value.encode())
    return {v for v in out if len(v) >= MIN_KNOWN}


class Scrubber:
    """Removes known secret values and secret-looking values from text; counts what it removed per category."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self.counts: Counter[str] = Counter()
        self._known: set[str] = set()
        self._ordered: list[str] = []
        self._known_re: re.Pattern[str] | None = None
        for v in known:
            self.add(v)

    def add(self, value: str) -> bool:
        """Register a known secret (all lines of a multi-line value too). False when it is too short to replace."""
        value = value.strip("\r\n")
        if len(value) < MIN_KNOWN:
            return False
        parts = [value] + [ln.strip() for ln in value.splitlines() if len(ln.strip()) >= MIN_KNOWN * 2]
        for part in parts:
            self._known |= variants(part)
        self._ordered = sorted(self._known, key=len, reverse=True)
        self._known_re = re.compile("|".join(re.escape(v) for v in self._ordered))
        return True

    def __len__(self) -> int:
        return len(self._known)

    # -- text

    def scrub(self, text: str) -> str:
        text = PEM_RE.sub(lambda m: self._pem(m), text)  # first: a known key's lines would break up its block
        if self._known_re is not None:
            text = self._known_re.sub(lambda m: self._count("known-secret"), text)
        text = JWT_RE.sub(lambda m: self._count("jwt"), text)
        text = STS_TOKEN_RE.sub(lambda m: self._count("sts-token"), text)
        text = STS_ID_RE.sub(lambda m: self._count("sts-access-key-id"), text)
        text = AK_ID_RE.sub(lambda m: self._count("access-key-id"), text)
        text = AUTH_HEADER_RE.sub(lambda m: self._keep_prefix(m, 2, 3, "auth-header"), text)
        text = URL_PASSWORD_RE.sub(lambda m: m.group(1) + self._count("url-password") + m.group(3), text)
        text = JSON_RE.sub(lambda m: self._json(m), text)
        text = ENV_RE.sub(lambda m: self._env(m), text)
        text = YAML_RE.sub(lambda m: self._yaml(m), text)
        text = FLAG_RE.sub(lambda m: self._flag(m), text)
        text = CONTEXT_RE.sub(lambda m: self._context(m), text)
        return text

    def scrub_bytes(self, data: bytes) -> bytes:
        """Binary-safe: undecodable bytes pass through as they are (surrogateescape)."""
        return self.scrub(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    # -- replacements

    def _count(self, category: str) -> str:
        self.counts[category] += 1
        return marker(category)

    def _pem(self, m: re.Match[str]) -> str:
        kind = m.group(1)
        return f"-----BEGIN {kind}PRIVATE KEY-----{self._count('private-key')}-----END {kind}PRIVATE KEY-----"

    def _keep_prefix(self, m: re.Match[str], upto: int, value_group: int, category: str) -> str:
        if _keep_value(m.group(value_group)):
            return m.group(0)
        return "".join(m.group(i) for i in range(1, upto + 1)) + self._count(category)

    def _json(self, m: re.Match[str]) -> str:
        if _keep_value(m.group(2)) or _benign_key(m.group(1).split('"')[1]):
            return m.group(0)
        return m.group(1) + '"' + self._count("secret-value") + '"'

    def _env(self, m: re.Match[str]) -> str:
        lead, key, eq, value = m.groups()
        rest = ""
        # inside a JSON string ("KEY=VALUE", ...) the value ends at the closing (unescaped) quote
        end = re.search(r'(?<!\\)"', value) if lead.endswith('"') else None
        if end is not None:
            value, rest = value[: end.start()], value[end.start() :]
        if _keep_value(value) or not value.strip() or _benign_key(key):
            return m.group(0)
        return lead + key + eq + self._count("env-secret") + rest

    def _yaml(self, m: re.Match[str]) -> str:
        head, value, comment = m.group(1), m.group(2), m.group(3) or ""
        key = head.strip(" \t-").rstrip(":").strip(" \t\"'")
        if _keep_value(value) or value.strip().startswith(("{", "[")) or _benign_key(key):
            return m.group(0)
        return head + self._count("secret-value") + comment

    def _flag(self, m: re.Match[str]) -> str:
        if _keep_value(m.group(3)) or _benign_key(m.group(1)):
            return m.group(0)
        return m.group(1) + m.group(2) + self._count("secret-value")

    def _context(self, m: re.Match[str]) -> str:
        token = m.group(2)
        if not looks_random(token):
            return m.group(0)
        return m.group(1) + self._count("high-entropy")
