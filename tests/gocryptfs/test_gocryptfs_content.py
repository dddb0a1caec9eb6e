"""File contents: sizes, header, block layout and AAD, streaming with bounded memory, block ranges, corruption."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gocryptfs_testlib import data

from cai_tui.gocryptfs.content import (
    CIPHER_BLOCK_SIZE,
    HEADER_LEN,
    ContentCipher,
    DecryptingReader,
    block_offset,
    cipher_size,
    decrypt_stream,
    encrypt_block_range,
    encrypt_stream,
    make_header,
    parse_header,
    plain_size,
    prepare_cipher_file,
)
from cai_tui.gocryptfs.errors import CorruptFile
from cai_tui.gocryptfs.writer import split_block_ranges

KEY = bytes(range(32, 64))
FILE_ID = bytes(range(1, 17))


@pytest.mark.parametrize(
    ("plain", "on_disk"),
    [
        (0, 0),
        (1, 51),
        (4095, 18 + 4095 + 32),
        (4096, 18 + 4128),
        (4097, 18 + 4128 + 33),
        (5000, 5082),
        ((1 << 20) + 3, 18 + 256 * 4128 + 35),
        (1 << 30, 1_082_130_450),
    ],
)
def test_sizes(plain: int, on_disk: int) -> None:
    assert cipher_size(plain) == on_disk
    assert plain_size(on_disk) == plain


def test_impossible_sizes() -> None:
    assert plain_size(HEADER_LEN) == 0  # header only reads as empty, as in gocryptfs
    for bad in [1, 17, HEADER_LEN + 1, HEADER_LEN + 32, HEADER_LEN + CIPHER_BLOCK_SIZE + 32]:
        with pytest.raises(ValueError):
            plain_size(bad)
    with pytest.raises(ValueError):
        cipher_size(-1)


def test_header() -> None:
    header = make_header(FILE_ID)
    assert header == b"\x00\x02" + FILE_ID and len(header) == HEADER_LEN
    assert parse_header(header) == FILE_ID
    for bad in [bytes(18), b"\x00\x01" + FILE_ID, b"\x00\x02" + bytes(16), header[:17]]:
        with pytest.raises(ValueError):
            parse_header(bad)


def _encrypt(plain: bytes, file_id: bytes | None = FILE_ID) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(plain), out, KEY, file_id=file_id)
    return out.getvalue()


def test_block_layout_and_aad_by_hand() -> None:
    plain = data(1, 5000)
    blob = _encrypt(plain)
    assert len(blob) == 5082 and blob[:HEADER_LEN] == make_header(FILE_ID)
    aead = AESGCM(KEY)
    b0 = blob[HEADER_LEN : HEADER_LEN + CIPHER_BLOCK_SIZE]
    b1 = blob[HEADER_LEN + CIPHER_BLOCK_SIZE :]
    assert aead.decrypt(b0[:16], b0[16:], (0).to_bytes(8, "big") + FILE_ID) == plain[:4096]
    assert aead.decrypt(b1[:16], b1[16:], (1).to_bytes(8, "big") + FILE_ID) == plain[4096:]
    assert b0[:16] != b1[:16]  # fresh random nonces


def test_empty_stream_writes_nothing() -> None:
    assert _encrypt(b"") == b""
    reader = DecryptingReader(io.BytesIO(b""), KEY)
    assert reader.size == 0 and reader.read() == b""
    # a header-only file reads as empty, as gocryptfs treats it
    assert DecryptingReader(io.BytesIO(make_header(FILE_ID)), KEY).read() == b""


@pytest.mark.parametrize("size", [1, 4095, 4096, 4097, 5000, 256 * 4096, 256 * 4096 + 1, 600_000])
def test_stream_roundtrip(size: int) -> None:
    plain = data(size, size)
    blob = _encrypt(plain, file_id=None)
    assert len(blob) == cipher_size(size)
    out = io.BytesIO()
    assert decrypt_stream(io.BytesIO(blob), out, KEY) == size
    assert out.getvalue() == plain


def test_random_access_reads() -> None:
    plain = data(7, 3 * 4096 + 77)
    with DecryptingReader(io.BytesIO(_encrypt(plain)), KEY) as reader:
        buffered = io.BufferedReader(reader, buffer_size=4096)
        for offset, length in [(0, 10), (4090, 20), (4096, 4096), (8000, 10_000), (len(plain) - 1, 5), (99_999, 1)]:
            buffered.seek(offset)
            assert buffered.read(length) == plain[offset : offset + length]


def test_file_holes_read_as_zeros() -> None:
    plain = data(8, 3 * 4096)
    blob = bytearray(_encrypt(plain))
    blob[block_offset(1) : block_offset(2)] = bytes(CIPHER_BLOCK_SIZE)  # what ftruncate leaves in gocryptfs
    got = DecryptingReader(io.BytesIO(bytes(blob)), KEY).read()
    assert got == plain[:4096] + bytes(4096) + plain[8192:]


@pytest.mark.parametrize(
    ("offset", "block"),
    [(block_offset(0) + 40, 0), (block_offset(1) + 5, 1), (block_offset(2) - 1, 1), (block_offset(2) + 20, 2)],
)
def test_tampering_names_the_block(offset: int, block: int) -> None:
    blob = bytearray(_encrypt(data(9, 2 * 4096 + 100)))
    blob[offset] ^= 0x01
    with pytest.raises(CorruptFile) as info:
        DecryptingReader(io.BytesIO(bytes(blob)), KEY, path="dir/model.bin").read()
    assert info.value.block == block and info.value.path == "dir/model.bin"
    assert f"block {block}" in str(info.value) and "dir/model.bin" in str(info.value)


def test_other_corruptions() -> None:
    blob = _encrypt(data(10, 2 * 4096))
    swapped = blob[:HEADER_LEN] + blob[block_offset(1) : block_offset(2)] + blob[block_offset(0) : block_offset(1)]
    with pytest.raises(CorruptFile) as info:
        DecryptingReader(io.BytesIO(swapped), KEY).read()
    assert info.value.block == 0  # blocks are bound to their position
    other_id = make_header(bytes(range(2, 18))) + blob[HEADER_LEN:]
    with pytest.raises(CorruptFile):
        DecryptingReader(io.BytesIO(other_id), KEY).read()  # and to the file ID
    with pytest.raises(CorruptFile) as info:
        DecryptingReader(io.BytesIO(bytes(18) + blob[HEADER_LEN:]), KEY)
    assert info.value.block is None and "header" in str(info.value)
    with pytest.raises(CorruptFile):
        DecryptingReader(io.BytesIO(blob[:-4100]), KEY)  # truncated into the overhead of the last block
    zero_nonce = bytearray(blob)
    zero_nonce[block_offset(1) : block_offset(1) + 16] = bytes(16)
    with pytest.raises(CorruptFile, match="all-zero nonce"):
        DecryptingReader(io.BytesIO(bytes(zero_nonce)), KEY).read()
    with pytest.raises(CorruptFile):
        DecryptingReader(io.BytesIO(blob), bytes(32)).read()  # wrong key


def test_single_block_api_and_symlink_aad() -> None:
    cipher = ContentCipher(KEY)
    block = cipher.encrypt_block(b"target/path", 0, b"")
    assert len(block) == 11 + 32
    assert AESGCM(KEY).decrypt(block[:16], block[16:], bytes(8)) == b"target/path"  # AAD: block number 0 only
    assert cipher.decrypt_block(block, 0, b"") == b"target/path"
    with pytest.raises(ValueError):
        cipher.encrypt_block(bytes(4097), 0, b"")
    assert "KEY" not in repr(cipher) and KEY.hex() not in repr(cipher)


def test_block_ranges_in_any_order_equal_a_stream(tmp_path: Path) -> None:
    size = 9 * 4096 + 123
    src = tmp_path / "src"
    src.write_bytes(data(11, size))
    dst = tmp_path / "dst"
    prepare_cipher_file(dst, FILE_ID, size)
    assert dst.stat().st_size == cipher_size(size)
    ranges = split_block_ranges(size, 4)
    assert ranges == [(0, 4), (4, 8), (8, 10)]
    done = [encrypt_block_range(src, dst, KEY, FILE_ID, first, end) for first, end in reversed(ranges)]
    assert sum(done) == size and done[0] == 4096 + 123
    assert dst.stat().st_size == cipher_size(size)
    with open(dst, "rb") as f:
        assert DecryptingReader(f, KEY, close_raw=False).read() == src.read_bytes()
    with pytest.raises(FileExistsError):
        prepare_cipher_file(dst, FILE_ID, size)
    with pytest.raises(ValueError):
        encrypt_block_range(src, dst, KEY, FILE_ID, 5, 4)


class _Zeros(io.RawIOBase):
    """A plaintext source of ``size`` bytes that exists nowhere in memory."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.max_request = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[no-untyped-def]
        self.max_request = max(self.max_request, len(buf))
        n = min(len(buf), self.left)
        buf[:n] = bytes(n)
        self.left -= n
        return n


class _CountingSink(io.RawIOBase):
    def __init__(self) -> None:
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:  # type: ignore[no-untyped-def]
        self.count += len(b)
        return len(b)


def test_streaming_memory_is_bounded() -> None:
    size = 64 << 20
    src, sink = _Zeros(size), _CountingSink()
    progress: list[int] = []
    tracemalloc.start()
    try:
        done = encrypt_stream(
            cast(BinaryIO, src), cast(BinaryIO, sink), KEY, progress=lambda e: progress.append(e.done)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert done == size and sink.count == cipher_size(size)
    assert peak < 8 << 20, f"peak {peak} bytes for a {size}-byte stream"
    assert src.max_request <= 1 << 20
    assert progress == sorted(progress) and progress[-1] == size and len(progress) == 64


def test_progress_reports_path() -> None:
    calls: list[tuple[str, int | None, str, str]] = []
    encrypt_stream(
        io.BytesIO(bytes(5000)),
        io.BytesIO(),
        KEY,
        progress=lambda e: calls.append((e.kind, e.done, e.unit, e.text)),
        path="a/b",
    )
    assert calls == [("progress", 5000, "bytes", "a/b")]


def test_reader_rejects_io_after_close() -> None:
    reader = DecryptingReader(io.BytesIO(_encrypt(b"abc")), KEY)
    reader.close()
    with pytest.raises(ValueError):
        reader.readinto(bytearray(10))
