"""File-name encryption: padding, Raw64, EME with the directory IV, long names, validation."""

from __future__ import annotations

import hashlib
import os

import pytest

from cai_tui.gocryptfs.errors import InvalidName
from cai_tui.gocryptfs.names import (
    LONGNAME_PREFIX,
    NameCipher,
    b64_decode,
    b64_encode,
    is_longname_content,
    is_longname_file,
    pad16,
    unpad16,
)

KEY = bytes(range(32))
IV = bytes(range(100, 116))


@pytest.mark.parametrize("length", [1, 15, 16, 17, 31, 32, 255])
def test_pad16_is_pkcs7_and_always_pads(length: int) -> None:
    raw = b"x" * length
    padded = pad16(raw)
    pad = 16 - length % 16
    assert len(padded) % 16 == 0
    assert padded == raw + bytes([pad]) * pad  # 16 bytes of padding when already aligned
    assert unpad16(padded) == raw


@pytest.mark.parametrize(
    "padded",
    [b"", b"x" * 15, b"x" * 15 + b"\x00", b"x" * 15 + b"\x11", bytes([16]) * 16, b"x" * 13 + b"\x02\x03\x03"],
)
def test_unpad16_rejects(padded: bytes) -> None:
    with pytest.raises(ValueError):
        unpad16(padded)


def test_raw64_and_padded_base64() -> None:
    assert b64_encode(b"\xfb\xff") == "-_8"
    assert b64_encode(b"\xfb\xff", raw64=False) == "-_8="
    assert b64_decode("-_8") == b"\xfb\xff"
    assert b64_decode("-_8=", raw64=False) == b"\xfb\xff"
    for bad in ["-_8=", "+/8", "ab\ncd", "a", "-_9"]:  # padding, std alphabet, newline, bad length, non-zero bits
        with pytest.raises(ValueError):
            b64_decode(bad)
    with pytest.raises(ValueError):
        b64_decode("-_8", raw64=False)


def test_encrypt_decrypt_roundtrip_and_dependence_on_iv() -> None:
    names = NameCipher(KEY)
    for name in ["a", "model.safetensors", "模型-ünïcødé", "x" * 255, os.fsdecode(b"bad-\xff-utf8")]:
        cipher = names.encrypt(name, IV)
        assert "=" not in cipher and "/" not in cipher and "." not in cipher
        assert names.decrypt(cipher, IV) == name
    assert names.encrypt("same", IV) == names.encrypt("same", IV)  # deterministic per directory
    assert names.encrypt("same", IV) != names.encrypt("same", bytes(16))
    with pytest.raises(ValueError):
        names.decrypt(names.encrypt("same", IV), bytes(16))


def test_encoded_lengths() -> None:
    names = NameCipher(KEY)
    # 15 bytes pad to 16 → 22 Raw64 chars; 16 bytes pad to 32 → 43 chars
    assert len(names.encrypt("a" * 15, IV)) == 22
    assert len(names.encrypt("a" * 16, IV)) == 43
    assert len(names.encrypt("a" * 175, IV)) == 235
    assert len(names.encrypt("a" * 176, IV)) == 256


def test_long_name_threshold_and_hash() -> None:
    names = NameCipher(KEY)
    short, content = names.disk_name("a" * 175, IV)
    assert content is None and not short.startswith(LONGNAME_PREFIX)
    disk, content = names.disk_name("a" * 176, IV)
    assert content == names.encrypt("a" * 176, IV)
    digest = hashlib.sha256(content.encode()).digest()
    assert disk == LONGNAME_PREFIX + b64_encode(digest)
    assert len(disk) == len(LONGNAME_PREFIX) + 43
    assert is_longname_content(disk) and not is_longname_file(disk)
    assert is_longname_file(disk + ".name") and not is_longname_content(disk + ".name")
    # LongNameMax and LongNames=false
    assert NameCipher(KEY, long_name_max=100).disk_name("a" * 80, IV)[1] is not None
    assert NameCipher(KEY, long_name_max=None).disk_name("a" * 255, IV)[1] is None


def test_padded_base64_variant() -> None:
    names = NameCipher(KEY, raw64=False)
    cipher = names.encrypt("abc", IV)
    assert cipher.endswith("==")
    assert names.decrypt(cipher, IV) == "abc"


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "nul\0byte", "x" * 256, "é" * 128])
def test_invalid_plaintext_names(bad: str) -> None:
    with pytest.raises(InvalidName):
        NameCipher(KEY).encrypt(bad, IV)


def test_decrypt_rejects_names_that_decrypt_to_invalid_names() -> None:
    names = NameCipher(KEY)
    from cai_tui.gocryptfs.eme import EME

    eme = EME(KEY)
    slash = b64_encode(eme.encrypt(IV, pad16(b"a/b")))
    dotdot = b64_encode(eme.encrypt(IV, pad16(b"..")))
    for cipher in [slash, dotdot, "AAAA", "not-a-multiple-of-16"]:
        with pytest.raises(ValueError):
            names.decrypt(cipher, IV)
