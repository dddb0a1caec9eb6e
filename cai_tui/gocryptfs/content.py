"""File contents in the gocryptfs format: header, 4096-byte blocks, AES-256-GCM with 16-byte nonces.

On disk a non-empty file is ``header ‖ block_0 ‖ block_1 ‖ …``:

* header (18 bytes): format version ``00 02`` and a random 16-byte file ID (all-zero header or ID is invalid);
* block *n* holds plaintext bytes ``[4096 n, 4096 (n+1))`` as ``nonce(16) ‖ AES-GCM ciphertext ‖ tag(16)`` with
  ``AAD = uint64_be(n) ‖ file ID``; only the last block may be shorter, nothing is padded;
* an empty file is 0 bytes, without a header (a header-only file also reads as empty, as in gocryptfs);
* a full-size block of zero bytes reads as 4096 zero bytes without authentication (gocryptfs' file holes).

Everything here streams through fixed buffers of :data:`IO_BLOCKS` blocks, whatever the file size. The block-range
functions (:func:`encrypt_block_range`) let several processes fill parts of one ciphertext file.
"""

from __future__ import annotations

import io
import os
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..events import EventSink
from ..events import progress as progress_event
from .errors import CorruptFile

HEADER_VERSION = 2
FILE_ID_LEN = 16
HEADER_LEN = 2 + FILE_ID_LEN  # 18
BLOCK_SIZE = 4096
NONCE_LEN = 16
TAG_LEN = 16
BLOCK_OVERHEAD = NONCE_LEN + TAG_LEN  # 32
CIPHER_BLOCK_SIZE = BLOCK_SIZE + BLOCK_OVERHEAD  # 4128
IO_BLOCKS = 256  # blocks per read/write: 1 MiB of plaintext

_ZERO_NONCE = bytes(NONCE_LEN)
_ZERO_CIPHER_BLOCK = bytes(CIPHER_BLOCK_SIZE)
_ZERO_ID = bytes(FILE_ID_LEN)


# --------------------------------------------------------------------------------------------------------------- sizes
def cipher_size(plain_size: int) -> int:
    """Size on disk of a file with ``plain_size`` plaintext bytes (0 → 0, 1 → 51, 5000 → 5082)."""
    if plain_size < 0:
        raise ValueError("size must not be negative")
    if plain_size == 0:
        return 0
    full, rest = divmod(plain_size, BLOCK_SIZE)
    return HEADER_LEN + full * CIPHER_BLOCK_SIZE + (rest + BLOCK_OVERHEAD if rest else 0)


def plain_size(size_on_disk: int) -> int:
    """Plaintext size of a ciphertext file of ``size_on_disk`` bytes.

    Raises ``ValueError`` for sizes no gocryptfs file can have (1..17 bytes, or a last block of 1..32 bytes).
    """
    if size_on_disk < 0:
        raise ValueError("size must not be negative")
    if size_on_disk in (0, HEADER_LEN):
        return 0
    if size_on_disk < HEADER_LEN:
        raise ValueError(f"{size_on_disk} bytes is shorter than the {HEADER_LEN}-byte header")
    full, rest = divmod(size_on_disk - HEADER_LEN, CIPHER_BLOCK_SIZE)
    if rest and rest <= BLOCK_OVERHEAD:
        raise ValueError(f"last block has {rest} bytes, not more than the {BLOCK_OVERHEAD}-byte overhead")
    return full * BLOCK_SIZE + (rest - BLOCK_OVERHEAD if rest else 0)


def block_count(plain_size: int) -> int:
    """Number of content blocks of a file of ``plain_size`` bytes."""
    return -(-plain_size // BLOCK_SIZE)


def block_offset(block_no: int) -> int:
    """Offset of ciphertext block ``block_no`` in the file on disk."""
    return HEADER_LEN + block_no * CIPHER_BLOCK_SIZE


# -------------------------------------------------------------------------------------------------------------- header
def new_file_id() -> bytes:
    while True:
        file_id = os.urandom(FILE_ID_LEN)
        if file_id != _ZERO_ID:
            return file_id


def make_header(file_id: bytes) -> bytes:
    if len(file_id) != FILE_ID_LEN or file_id == _ZERO_ID:
        raise ValueError("file ID must be 16 bytes, not all zero")
    return HEADER_VERSION.to_bytes(2, "big") + bytes(file_id)


def parse_header(header: bytes) -> bytes:
    """Return the file ID of an 18-byte header; ``ValueError`` if it is malformed."""
    if len(header) != HEADER_LEN:
        raise ValueError(f"header is {len(header)} bytes, not {HEADER_LEN}")
    version = int.from_bytes(header[:2], "big")
    if version != HEADER_VERSION:
        raise ValueError(f"header version is {version}, not {HEADER_VERSION}")
    file_id = bytes(header[2:])
    if file_id == _ZERO_ID:
        raise ValueError("file ID is all zero")
    return file_id


def block_aad(block_no: int, file_id: bytes) -> bytes:
    """Associated data of a block: 8-byte big-endian block number ‖ file ID (empty for symlinks and the conf key)."""
    return block_no.to_bytes(8, "big") + file_id


# -------------------------------------------------------------------------------------------------------------- blocks
class BlockError(ValueError):
    """A ciphertext block failed to decrypt; ``block`` is its number. Callers turn it into :class:`CorruptFile`."""

    def __init__(self, block: int, reason: str) -> None:
        self.block = block
        self.reason = reason
        super().__init__(f"block {block}: {reason}")


class ContentCipher:
    """AES-256-GCM over gocryptfs blocks with one content key."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError(f"content key must be 32 bytes, not {len(key)}")
        self.key = bytes(key)
        self._aead = AESGCM(self.key)

    def __repr__(self) -> str:
        return "ContentCipher(<key hidden>)"

    def encrypt_block(self, plaintext: bytes, block_no: int, file_id: bytes, nonce: bytes | None = None) -> bytes:
        """``nonce ‖ ciphertext ‖ tag`` of one block (at most 4096 bytes); ``file_id`` may be ``b""``."""
        if not 0 < len(plaintext) <= BLOCK_SIZE:
            raise ValueError(f"a block holds 1..{BLOCK_SIZE} bytes, not {len(plaintext)}")
        if nonce is None:
            nonce = os.urandom(NONCE_LEN)
        if len(nonce) != NONCE_LEN:
            raise ValueError(f"nonce must be {NONCE_LEN} bytes")
        return nonce + self._aead.encrypt(nonce, plaintext, block_aad(block_no, file_id))

    def decrypt_block(self, ciphertext: bytes, block_no: int, file_id: bytes) -> bytes:
        """Plaintext of one stored block; :class:`BlockError` if it does not authenticate."""
        out = bytearray(max(len(ciphertext) - BLOCK_OVERHEAD, 0))
        view = self.decrypt_chunk(memoryview(ciphertext), block_no, file_id, out)
        return bytes(view)

    def encrypt_chunk(self, plain: memoryview, first_block: int, file_id: bytes, out: bytearray) -> memoryview:
        """Encrypt consecutive blocks starting at ``first_block`` into ``out``; return the written part of ``out``.

        ``plain`` is block-aligned except possibly at its end; ``out`` must have room for the ciphertext.
        """
        size = len(plain)
        count = block_count(size)
        nonces = os.urandom(NONCE_LEN * count)
        view = memoryview(out)
        aead = self._aead
        pos = 0
        for i in range(count):
            part = plain[i * BLOCK_SIZE : (i + 1) * BLOCK_SIZE]
            nonce = nonces[i * NONCE_LEN : (i + 1) * NONCE_LEN]
            view[pos : pos + NONCE_LEN] = nonce
            end = pos + NONCE_LEN + len(part) + TAG_LEN
            aead.encrypt_into(nonce, part, block_aad(first_block + i, file_id), view[pos + NONCE_LEN : end])
            pos = end
        return view[:pos]

    def decrypt_chunk(self, cipher: memoryview, first_block: int, file_id: bytes, out: bytearray) -> memoryview:
        """Decrypt consecutive stored blocks starting at ``first_block`` into ``out``; return the written part."""
        view = memoryview(out)
        aead = self._aead
        size = len(cipher)
        pos = 0
        written = 0
        block_no = first_block
        while pos < size:
            part = cipher[pos : pos + CIPHER_BLOCK_SIZE]
            length = len(part) - BLOCK_OVERHEAD
            if length <= 0:
                raise BlockError(block_no, f"block is {len(part)} bytes, too short")
            nonce = part[:NONCE_LEN]
            if nonce == _ZERO_NONCE:
                if len(part) == CIPHER_BLOCK_SIZE and part == _ZERO_CIPHER_BLOCK:
                    # A file hole: gocryptfs passes all-zero blocks through as zeros.
                    view[written : written + BLOCK_SIZE] = bytes(BLOCK_SIZE)
                else:
                    raise BlockError(block_no, "all-zero nonce")
            else:
                try:
                    aead.decrypt_into(
                        nonce, part[NONCE_LEN:], block_aad(block_no, file_id), view[written : written + length]
                    )
                except InvalidTag:
                    raise BlockError(block_no, "authentication failed") from None
            pos += len(part)
            written += length
            block_no += 1
        return view[:written]


def as_cipher(key: bytes | ContentCipher) -> ContentCipher:
    return key if isinstance(key, ContentCipher) else ContentCipher(key)


# ----------------------------------------------------------------------------------------------------------- raw I/O
def read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``src`` until it is full or EOF; return the byte count."""
    got = 0
    size = len(buf)
    while got < size:
        n = src.readinto(buf[got:])  # type: ignore[attr-defined]
        if not n:
            break
        got += n
    return got


def write_full(dst: BinaryIO, data: memoryview) -> None:
    pos = 0
    while pos < len(data):
        n = dst.write(data[pos:])
        if n is None:  # a non-blocking raw stream; not expected for files
            raise OSError("short write")
        pos += n


def pwrite_full(fd: int, data: memoryview, offset: int) -> None:
    pos = 0
    while pos < len(data):
        pos += os.pwrite(fd, data[pos:], offset + pos)


# ----------------------------------------------------------------------------------------------------------- streams
def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes | ContentCipher,
    *,
    file_id: bytes | None = None,
    progress: EventSink | None = None,
    path: str = "",
) -> int:
    """Encrypt all of ``src`` (plaintext) to ``dst`` in the gocryptfs format; return the plaintext byte count.

    Memory stays at two 1-MiB buffers. An empty ``src`` writes nothing (no header), as gocryptfs does.
    A ``progress`` event (bytes done in this stream, ``text`` = ``path``) goes to ``progress`` after every chunk.
    """
    cipher = as_cipher(key)
    buf = bytearray(IO_BLOCKS * BLOCK_SIZE)
    out = bytearray(IO_BLOCKS * CIPHER_BLOCK_SIZE)
    view = memoryview(buf)
    n = read_full(src, view)
    if n == 0:
        return 0
    file_id = file_id or new_file_id()
    write_full(dst, memoryview(make_header(file_id)))
    block = 0
    total = 0
    while n:
        write_full(dst, cipher.encrypt_chunk(view[:n], block, file_id, out))
        total += n
        block += block_count(n)
        if progress is not None:
            progress(progress_event(total, None, text=path))
        if n < len(buf):
            break
        n = read_full(src, view)
    return total


def encrypt_block_range(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    key: bytes | ContentCipher,
    file_id: bytes,
    first_block: int,
    end_block: int,
) -> int:
    """Encrypt plaintext blocks ``[first_block, end_block)`` of ``src_path`` into the existing ``dst_path``.

    Each block goes to its own offset (:func:`block_offset`), so disjoint ranges of one file can run in separate
    processes; the caller writes the header (:func:`prepare_cipher_file`). Returns the plaintext bytes encrypted,
    which is less than ``(end_block - first_block) * 4096`` only when the source ends inside the range.
    A top-level function with plain arguments, so a ``ProcessPoolExecutor`` can call it.
    """
    if not 0 <= first_block <= end_block:
        raise ValueError(f"bad block range [{first_block}, {end_block})")
    cipher = as_cipher(key)
    buf = bytearray(IO_BLOCKS * BLOCK_SIZE)
    out = bytearray(IO_BLOCKS * CIPHER_BLOCK_SIZE)
    view = memoryview(buf)
    total = 0
    with open(src_path, "rb", buffering=0) as src:
        fd = os.open(dst_path, os.O_WRONLY)
        try:
            src.seek(first_block * BLOCK_SIZE)
            block = first_block
            while block < end_block:
                want = min(IO_BLOCKS, end_block - block) * BLOCK_SIZE
                n = read_full(src, view[:want])
                if n == 0:
                    break
                pwrite_full(fd, cipher.encrypt_chunk(view[:n], block, file_id, out), block_offset(block))
                total += n
                block += block_count(n)
                if n < want:
                    break
        finally:
            os.close(fd)
    return total


def prepare_cipher_file(dst_path: str | os.PathLike[str], file_id: bytes, plain_size: int) -> None:
    """Create ``dst_path`` (exclusive, mode 0600) with the header, sized for ``plain_size`` bytes of plaintext, so
    that :func:`encrypt_block_range` calls can fill it in any order."""
    fd = os.open(dst_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        pwrite_full(fd, memoryview(make_header(file_id)), 0)
        os.ftruncate(fd, cipher_size(plain_size))
    finally:
        os.close(fd)


class DecryptingReader(io.RawIOBase):
    """A readable, seekable plaintext view of one gocryptfs file (random access, block-wise decryption).

    ``raw`` must be a seekable binary file object positioned anywhere; it is closed with the reader when
    ``close_raw`` is true. Corruption raises :class:`CorruptFile` naming ``path`` and the block.
    Wrap it in ``io.BufferedReader`` for small reads.
    """

    def __init__(
        self,
        raw: BinaryIO,
        key: bytes | ContentCipher,
        *,
        path: str = "",
        cipher_path: str | None = None,
        close_raw: bool = True,
    ) -> None:
        super().__init__()
        self._raw = raw
        self._cipher = as_cipher(key)
        self._path = path
        self._cipher_path = cipher_path
        self._close_raw = close_raw
        self._pos = 0
        self._cbuf = bytearray(IO_BLOCKS * CIPHER_BLOCK_SIZE)
        self._pbuf = bytearray(IO_BLOCKS * BLOCK_SIZE)
        size_on_disk = raw.seek(0, io.SEEK_END)
        try:
            self._size = plain_size(size_on_disk)
        except ValueError as exc:
            last = max(size_on_disk - HEADER_LEN, 0) // CIPHER_BLOCK_SIZE if size_on_disk > HEADER_LEN else None
            raise self._corrupt(last, f"impossible size {size_on_disk}: {exc}") from None
        self._file_id = b""
        if self._size:
            raw.seek(0)
            header = raw.read(HEADER_LEN)
            try:
                self._file_id = parse_header(header)
            except ValueError as exc:
                raise self._corrupt(None, f"bad header: {exc}") from None

    def _corrupt(self, block: int | None, reason: str) -> CorruptFile:
        return CorruptFile(self._path or (self._cipher_path or "?"), block, reason, cipher_path=self._cipher_path)

    @property
    def size(self) -> int:
        """Plaintext size in bytes."""
        return self._size

    @property
    def file_id(self) -> bytes:
        return self._file_id

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            pos = offset
        elif whence == io.SEEK_CUR:
            pos = self._pos + offset
        elif whence == io.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if pos < 0:
            raise ValueError("negative seek position")
        self._pos = pos
        return pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("I/O operation on closed file")
        target = memoryview(buffer).cast("B")
        pos = self._pos
        if pos >= self._size or not len(target):
            return 0
        first = pos // BLOCK_SIZE
        end = min(self._size, pos + len(target))
        last = (end - 1) // BLOCK_SIZE
        count = min(last - first + 1, IO_BLOCKS)
        cview = memoryview(self._cbuf)
        want = min(count * CIPHER_BLOCK_SIZE, cipher_size(self._size) - block_offset(first))
        self._raw.seek(block_offset(first))
        got = read_full(self._raw, cview[:want])
        if got != want:
            raise self._corrupt(first + got // CIPHER_BLOCK_SIZE, "file shrank while reading")
        try:
            plain = self._cipher.decrypt_chunk(cview[:got], first, self._file_id, self._pbuf)
        except BlockError as exc:
            raise self._corrupt(exc.block, exc.reason) from None
        skip = pos - first * BLOCK_SIZE
        n = min(len(plain) - skip, end - pos)
        target[:n] = plain[skip : skip + n]
        self._pos = pos + n
        return n

    def readall(self) -> bytes:
        chunks = []
        while True:
            chunk = self.read(IO_BLOCKS * BLOCK_SIZE)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if not self.closed and self._close_raw:
            self._raw.close()
        super().close()


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    key: bytes | ContentCipher,
    *,
    path: str = "",
    cipher_path: str | None = None,
    progress: EventSink | None = None,
) -> int:
    """Decrypt the gocryptfs file ``src`` (seekable) to ``dst``; return the plaintext byte count."""
    reader = DecryptingReader(src, key, path=path, cipher_path=cipher_path, close_raw=False)
    buf = bytearray(IO_BLOCKS * BLOCK_SIZE)
    view = memoryview(buf)
    total = 0
    while True:
        n = reader.readinto(view)
        if not n:
            break
        write_full(dst, view[:n])
        total += n
        if progress is not None:
            progress(progress_event(total, None, text=path))
    return total
