"""File names in the gocryptfs format: EME with the directory IV, PKCS#7 padding, Raw64, long names.

A plaintext name (1..255 bytes, no NUL or ``/``, not ``.``/``..``) is padded to a multiple of 16 bytes (PKCS#7, always
1..16 bytes of padding), EME-encrypted with the directory's IV (``gocryptfs.diriv``) as the tweak and written as
unpadded URL-safe base64 ("Raw64"). An encoded name longer than 255 characters (plaintext of 176 bytes or more) is
stored as ``gocryptfs.longname.<Raw64(SHA-256(encoded name))>`` with a sibling ``….name`` file holding the encoded
name.

Plaintext names are ``str`` as ``os.listdir`` returns them; they are converted with ``os.fsencode``/``os.fsdecode``, so
names that are not valid UTF-8 round-trip through the surrogate escapes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re

from .eme import EME
from .errors import InvalidName

CONF_NAME = "gocryptfs.conf"
DIRIV_NAME = "gocryptfs.diriv"
DIRIV_LEN = 16
LONGNAME_PREFIX = "gocryptfs.longname."
LONGNAME_SUFFIX = ".name"
NAME_MAX = 255
# 256 bytes (255 padded) encode to 344 characters with padding; a longer .name file is corrupt.
LONGNAME_FILE_MAX = 344

_B64_CHARS = re.compile(r"\A[A-Za-z0-9_-]*\Z")
_B64_PADDED = re.compile(r"\A[A-Za-z0-9_-]*={0,2}\Z")


def pad16(data: bytes) -> bytes:
    if not data:
        raise ValueError("cannot pad an empty name")
    pad = 16 - len(data) % 16
    return bytes(data) + bytes([pad]) * pad


def unpad16(data: bytes) -> bytes:
    if not data or len(data) % 16:
        raise ValueError(f"padded length {len(data)} is not a positive multiple of 16")
    pad = data[-1]
    if not 1 <= pad <= 16:
        raise ValueError(f"invalid padding length {pad}")
    if pad >= len(data):
        raise ValueError("padding covers the whole name")
    if data[-pad:] != bytes([pad]) * pad:
        raise ValueError("inconsistent padding bytes")
    return data[:-pad]


def b64_encode(data: bytes, *, raw64: bool = True) -> str:
    text = base64.urlsafe_b64encode(data).decode("ascii")
    return text.rstrip("=") if raw64 else text


def b64_decode(text: str, *, raw64: bool = True) -> bytes:
    """Strict URL-safe base64: only the alphabet, no line breaks, canonical trailing bits (as Go's ``Strict``)."""
    if raw64:
        if not _B64_CHARS.match(text) or len(text) % 4 == 1:
            raise ValueError("not unpadded URL-safe base64")
        padded = text + "=" * (-len(text) % 4)
    else:
        if not _B64_PADDED.match(text) or len(text) % 4:
            raise ValueError("not padded URL-safe base64")
        padded = text
    try:
        data = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"bad base64: {exc}") from None
    if b64_encode(data, raw64=raw64) != text:
        raise ValueError("non-canonical base64")
    return data


def plain_name_bytes(name: str | bytes) -> bytes:
    """The name as bytes, checked like gocryptfs' ``IsValidName``; :class:`InvalidName` otherwise."""
    raw = os.fsencode(name)
    if not raw:
        raise InvalidName("empty file name")
    if len(raw) > NAME_MAX:
        raise InvalidName(f"file name is {len(raw)} bytes, more than {NAME_MAX}: {os.fsdecode(raw)[:40]!r}…")
    if b"\0" in raw or b"/" in raw:
        raise InvalidName(f"file name contains NUL or '/': {os.fsdecode(raw)!r}")
    if raw in (b".", b".."):
        raise InvalidName(f"{os.fsdecode(raw)!r} is not a valid file name")
    return raw


def is_longname_content(disk_name: str) -> bool:
    return disk_name.startswith(LONGNAME_PREFIX) and not disk_name.endswith(LONGNAME_SUFFIX)


def is_longname_file(disk_name: str) -> bool:
    return disk_name.startswith(LONGNAME_PREFIX) and disk_name.endswith(LONGNAME_SUFFIX)


class NameCipher:
    """Encrypt and decrypt names of one cipherdir.

    ``long_name_max``: encoded names longer than this are hashed (255 by default, the ``LongNameMax`` value when that
    flag is set, ``None`` when the ``LongNames`` flag is off). ``raw64=False`` is base64 with ``=`` padding.
    """

    def __init__(self, name_key: bytes, *, raw64: bool = True, long_name_max: int | None = NAME_MAX) -> None:
        self._eme = EME(name_key)
        self.raw64 = raw64
        self.long_name_max = long_name_max

    def __repr__(self) -> str:
        return f"NameCipher(<key hidden>, raw64={self.raw64}, long_name_max={self.long_name_max})"

    def encrypt(self, name: str | bytes, iv: bytes) -> str:
        """The encoded (not hashed) ciphertext name of ``name`` in a directory with IV ``iv``."""
        raw = plain_name_bytes(name)
        return b64_encode(self._eme.encrypt(iv, pad16(raw)), raw64=self.raw64)

    def decrypt(self, cipher_name: str, iv: bytes) -> str:
        """The plaintext name of an encoded ciphertext name; ``ValueError`` if it does not decrypt to a valid name."""
        data = b64_decode(cipher_name, raw64=self.raw64)
        if not data or len(data) % 16 or len(data) > 16 * 128:
            raise ValueError(f"decoded name length {len(data)} is not a multiple of 16 in 16..2048")
        raw = unpad16(self._eme.decrypt(iv, data))
        try:
            plain_name_bytes(raw)
        except InvalidName as exc:
            raise ValueError(f"decrypts to an invalid name: {exc}") from None
        return os.fsdecode(raw)

    def hash_long_name(self, cipher_name: str) -> str:
        digest = hashlib.sha256(cipher_name.encode("ascii")).digest()
        return LONGNAME_PREFIX + b64_encode(digest, raw64=self.raw64)

    def disk_name(self, name: str | bytes, iv: bytes) -> tuple[str, str | None]:
        """``(name on disk, content of the .name file or None)`` for a plaintext ``name`` in a directory with ``iv``."""
        encoded = self.encrypt(name, iv)
        if self.long_name_max is not None and len(encoded) > self.long_name_max:
            return self.hash_long_name(encoded), encoded
        return encoded, None
