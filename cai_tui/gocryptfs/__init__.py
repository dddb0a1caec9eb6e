"""A native reader and writer of the gocryptfs on-disk format (v2, as gocryptfs 2.x writes it by default).

Write a cipherdir that the real ``gocryptfs`` mounts, or read one it wrote, without FUSE or root::

    from cai_tui.gocryptfs import encrypt_tree, open_cipherdir

    encrypt_tree("model/", "model.enc/", b"password", workers=2, progress=lambda event: ...)
    cd = open_cipherdir("model.enc/", b"password")
    for rel_path, stream in cd.iter_files():
        ...

Modules: ``config`` (gocryptfs.conf), ``keys`` (HKDF), ``eme`` (EME), ``names`` (file names), ``content`` (file
contents, streaming, block ranges), ``writer``, ``reader``, ``errors``.
"""

from .config import GocryptfsConfig, ScryptParams, create_config, load_config
from .content import (
    BLOCK_SIZE,
    CIPHER_BLOCK_SIZE,
    HEADER_LEN,
    ContentCipher,
    DecryptingReader,
    cipher_size,
    encrypt_block_range,
    plain_size,
    prepare_cipher_file,
)
from .errors import (
    CipherdirNotEmpty,
    CorruptFile,
    CorruptionError,
    CorruptName,
    GocryptfsError,
    InsecureConfig,
    InvalidName,
    NotACipherdir,
    UnsupportedConfig,
    UnsupportedFileType,
    WrongPassword,
)
from .keys import Keys
from .names import NameCipher
from .reader import Cipherdir, Entry, decrypt_file, decrypt_tree, open_cipherdir, verify_password
from .stats import TreeStats
from .writer import PARTIAL_SUFFIX, CipherdirWriter, encrypt_file, encrypt_fileobj, encrypt_tree, split_block_ranges

__all__ = [
    "BLOCK_SIZE",
    "CIPHER_BLOCK_SIZE",
    "HEADER_LEN",
    "PARTIAL_SUFFIX",
    "Cipherdir",
    "CipherdirNotEmpty",
    "CipherdirWriter",
    "ContentCipher",
    "CorruptFile",
    "CorruptName",
    "CorruptionError",
    "DecryptingReader",
    "Entry",
    "GocryptfsConfig",
    "GocryptfsError",
    "InsecureConfig",
    "InvalidName",
    "Keys",
    "NameCipher",
    "NotACipherdir",
    "ScryptParams",
    "TreeStats",
    "UnsupportedConfig",
    "UnsupportedFileType",
    "WrongPassword",
    "cipher_size",
    "create_config",
    "decrypt_file",
    "decrypt_tree",
    "encrypt_block_range",
    "encrypt_file",
    "encrypt_fileobj",
    "encrypt_tree",
    "load_config",
    "open_cipherdir",
    "plain_size",
    "prepare_cipher_file",
    "split_block_ranges",
    "verify_password",
]
