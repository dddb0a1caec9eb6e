"""Secrets as references: a recipe holds ``env:NAME``, ``file:PATH``, ``keyring:SERVICE/NAME`` or ``prompt``.

A value is only ever produced by :func:`resolve_secret` at run time, and every value produced joins the
redaction set. Loading a recipe with anything else in a secret field fails without echoing it.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

from .redaction import REDACTOR, Redactor

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_KEYRING = re.compile(r"^[^/\s]+/[^\s]+$")
REF_PATTERN = r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|keyring:[^/\s]+/\S+|prompt)$"

MOVE_HINT = (
    "secrets are never stored in a recipe; move the value into a file readable only by you "
    "(e.g. `umask 077; printf %s 'VALUE' > ~/.config/cai-tui/NAME`) and write `file:~/.config/cai-tui/NAME`, "
    "or export it and write `env:VARNAME`, or write `prompt` to be asked at run time"
)


@dataclass(frozen=True)
class SecretRef:
    scheme: str  # env | file | keyring | prompt
    target: str = ""

    def __str__(self) -> str:
        return "prompt" if self.scheme == "prompt" else f"{self.scheme}:{self.target}"

    @classmethod
    def parse(cls, text: str) -> SecretRef:
        text = text.strip()
        if text == "prompt":
            return cls("prompt")
        scheme, sep, target = text.partition(":")
        if sep and scheme == "env" and _ENV_NAME.match(target):
            return cls("env", target)
        if sep and scheme == "file" and target.strip():
            return cls("file", target)
        if sep and scheme == "keyring" and _KEYRING.match(target):
            return cls("keyring", target)
        raise ValueError("not a secret reference")


def _validate_ref(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    if isinstance(value, str):
        try:
            return SecretRef.parse(value)
        except ValueError:
            pass
        scheme = value.partition(":")[0]
        if scheme in ("env", "file", "keyring") and ":" in value and len(scheme) < len(value):
            raise PydanticCustomError(
                "secret_ref_malformed",
                "malformed secret reference ({scheme}:…); expected env:NAME (letters, digits, _), file:PATH, "
                "keyring:SERVICE/NAME or prompt",
                {"scheme": scheme},
            )
    raise PydanticCustomError("secret_inline", "looks like an inline secret (value not shown); " + MOVE_HINT)


SecretField = Annotated[
    SecretRef,
    BeforeValidator(_validate_ref),
    PlainSerializer(str, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": REF_PATTERN,
            "description": "secret reference: env:NAME, file:PATH, keyring:SERVICE/NAME or prompt",
        }
    ),
]


class SecretUnavailable(Exception):
    """A reference that cannot be resolved here; the message names the field and the fix."""


Prompter = Callable[[str], str]


def resolve_secret(
    ref: SecretRef,
    *,
    field: str,
    prompt: Prompter | None = None,
    redactor: Redactor = REDACTOR,
    min_bytes: int | None = None,
    max_bytes: int | None = None,
    what: str = "value",
) -> str:
    """Produce the secret's value, register it for redaction and check its length."""
    if ref.scheme == "env":
        value = os.environ.get(ref.target)
        if value is None:
            raise SecretUnavailable(
                f"{field}: environment variable {ref.target} is not set (export it, or change the reference)"
            )
    elif ref.scheme == "file":
        value = _read_secret_file(Path(os.path.expanduser(ref.target)), field)
    elif ref.scheme == "keyring":
        value = _from_keyring(ref.target, field)
    else:
        if prompt is None:
            raise SecretUnavailable(
                f"{field}: the recipe says `prompt` but there is no terminal to ask on; use env:NAME or file:PATH for headless runs"
            )
        value = prompt(field)
    redactor.add(value)
    n = len(value.encode("utf-8"))
    if (min_bytes is not None and n < min_bytes) or (max_bytes is not None and n > max_bytes):
        raise SecretUnavailable(f"{field}: {what} must be {min_bytes}–{max_bytes} bytes (the referenced value has {n})")
    if not value:
        raise SecretUnavailable(f"{field}: the referenced {what} is empty ({ref})")
    return value


def _read_secret_file(path: Path, field: str) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise SecretUnavailable(
            f"{field}: secret file {path} does not exist (create it, or change the reference)"
        ) from None
    except OSError as e:
        raise SecretUnavailable(f"{field}: cannot read secret file {path}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise SecretUnavailable(f"{field}: {path} is not a regular file")
    if st.st_size > 64 * 1024:
        raise SecretUnavailable(f"{field}: secret file {path} is {st.st_size} bytes; a secret file holds one value")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SecretUnavailable(f"{field}: cannot read secret file {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SecretUnavailable(f"{field}: secret file {path} is not UTF-8 text") from None
    # Like gocryptfs -passfile: the first line, without its line ending.
    return text.split("\n", 1)[0].rstrip("\r")


def _from_keyring(target: str, field: str) -> str:
    service, _, name = target.partition("/")
    try:
        import keyring  # optional dependency: pip install 'cai-tui[keyring]'
    except ImportError:
        raise SecretUnavailable(
            f"{field}: keyring references need the optional keyring package (pip install 'cai-tui[keyring]')"
        ) from None
    try:
        value = keyring.get_password(service, name)
    except Exception as e:  # keyring back ends raise their own types
        raise SecretUnavailable(f"{field}: the keyring could not be read: {e}") from None
    if value is None:
        raise SecretUnavailable(f"{field}: no entry {name!r} in keyring service {service!r}")
    return value


def file_mode_warning(path: Path) -> str | None:
    """A warning when a secret file is readable by group or others."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & 0o077:
        return f"{path} is readable by others (mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
    return None
