"""Key derivation: HKDF-SHA256 sub-keys of the gocryptfs master key (and of the scrypt hash for key wrapping)."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_LEN = 32
HKDF_INFO_CONTENT = b"AES-GCM file content encryption"
HKDF_INFO_NAMES = b"EME filename encryption"


def hkdf_sha256(key: bytes, info: bytes, length: int = KEY_LEN) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt, as gocryptfs' ``hkdfDerive``."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(bytes(key))


@dataclass(frozen=True)
class Keys:
    """The two working keys of a cipherdir.

    ``content``: AES-256-GCM key for file contents and symlink targets. ``names``: AES-256 key of EME for names.
    (File systems without the ``HKDF`` feature flag, gocryptfs <= 1.2, used the master key itself; not supported.)
    """

    content: bytes = field(repr=False)
    names: bytes = field(repr=False)

    @classmethod
    def from_master_key(cls, master_key: bytes) -> Keys:
        if len(master_key) != KEY_LEN:
            raise ValueError(f"master key must be {KEY_LEN} bytes, not {len(master_key)}")
        return cls(
            content=hkdf_sha256(master_key, HKDF_INFO_CONTENT),
            names=hkdf_sha256(master_key, HKDF_INFO_NAMES),
        )


def key_wrapping_key(scrypt_hash: bytes) -> bytes:
    """The AES-256-GCM key that wraps the master key in ``gocryptfs.conf``, from the scrypt output."""
    return hkdf_sha256(scrypt_hash, HKDF_INFO_CONTENT)
