"""Read a gocryptfs cipherdir with a password, without FUSE.

:func:`open_cipherdir` unlocks the master key; the :class:`Cipherdir` then walks the tree (plaintext names), opens
files as seekable decrypting streams, reads symlink targets, decrypts single files or the whole tree, and checks
everything (:meth:`Cipherdir.check`, like ``gocryptfs -fsck``). It reads what gocryptfs 2.x writes by default and
with ``-plaintextnames``, ``-deterministic-names`` or ``-longnamemax``, including file holes (all-zero blocks).

Errors name the file: :class:`~cai_tui.gocryptfs.errors.CorruptFile` (with the block),
:class:`~cai_tui.gocryptfs.errors.CorruptName`; a missing plaintext path is ``FileNotFoundError``.
"""

from __future__ import annotations

import io
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

from ..events import Event, EventSink
from ..events import progress as progress_event
from .config import GocryptfsConfig, load_config
from .content import (
    BLOCK_SIZE,
    IO_BLOCKS,
    BlockError,
    ContentCipher,
    DecryptingReader,
    as_cipher,
    cipher_size,
    decrypt_stream,
    plain_size,
)
from .errors import CorruptFile, CorruptionError, CorruptName, UnsupportedFileType
from .names import (
    CONF_NAME,
    DIRIV_LEN,
    DIRIV_NAME,
    LONGNAME_FILE_MAX,
    LONGNAME_SUFFIX,
    NameCipher,
    b64_decode,
    is_longname_content,
    is_longname_file,
    plain_name_bytes,
)
from .stats import TreeStats
from .writer import PARTIAL_SUFFIX, _check_target_dir, _unlink_quietly, partial_path

KIND_DIR = "dir"
KIND_FILE = "file"
KIND_SYMLINK = "symlink"
KIND_FIFO = "fifo"
KIND_OTHER = "other"


@dataclass(frozen=True)
class Entry:
    """One item of the plaintext tree."""

    path: str  # plaintext path relative to the root, "/"-separated
    kind: str  # "dir" | "file" | "symlink" | "fifo" | "other"
    cipher_path: str  # where it is on disk
    mode: int  # st_mode of the stored item (permission bits as seen through gocryptfs)
    size: int  # plaintext bytes for files, 0 otherwise
    mtime_ns: int
    atime_ns: int
    nlink: int
    inode: tuple[int, int]  # (st_dev, st_ino) of the stored item, for hard links


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return KIND_DIR
    if stat.S_ISREG(mode):
        return KIND_FILE
    if stat.S_ISLNK(mode):
        return KIND_SYMLINK
    if stat.S_ISFIFO(mode):
        return KIND_FIFO
    return KIND_OTHER


class Cipherdir:
    """An unlocked cipherdir. Create with :func:`open_cipherdir` (or :meth:`unlock`)."""

    def __init__(self, path: str | os.PathLike[str], config: GocryptfsConfig, master_key: bytes) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.config = config
        keys = config.keys(master_key)
        self._content = ContentCipher(keys.content)
        self._names: NameCipher | None = None
        if not config.plaintext_names:
            self._names = NameCipher(keys.names, raw64=config.raw64, long_name_max=config.effective_long_name_max)
        self.skipped: list[CorruptionError] = []
        """Undecryptable entries passed over by ``walk(strict=False)``."""

    def __repr__(self) -> str:
        return f"Cipherdir({self.path!r})"

    @classmethod
    def unlock(cls, path: str | os.PathLike[str], password: bytes | str) -> Cipherdir:
        config = load_config(path)
        return cls(path, config, config.decrypt_master_key(password))

    @property
    def content_cipher(self) -> ContentCipher:
        return self._content

    # ------------------------------------------------------------------ names
    def _dir_iv(self, cipher_dir: str, rel: str) -> bytes:
        if not self.config.dir_iv:
            return bytes(DIRIV_LEN)
        iv_path = os.path.join(cipher_dir, DIRIV_NAME)
        try:
            with open(iv_path, "rb") as f:
                iv = f.read(DIRIV_LEN + 1)
        except OSError as exc:
            raise CorruptName(rel or "/", f"cannot read {DIRIV_NAME}: {exc.strerror}", cipher_path=iv_path) from None
        if len(iv) != DIRIV_LEN or iv == bytes(DIRIV_LEN):
            raise CorruptName(rel or "/", f"invalid {DIRIV_NAME}", cipher_path=iv_path)
        return iv

    def _read_long_name(self, cipher_path: str, rel_dir: str) -> str:
        name_path = cipher_path + LONGNAME_SUFFIX
        label = f"{rel_dir}/{os.path.basename(cipher_path)}" if rel_dir else os.path.basename(cipher_path)
        try:
            with open(name_path, "rb") as f:
                data = f.read(LONGNAME_FILE_MAX + 1)
        except OSError as exc:
            raise CorruptName(label, f"cannot read the .name file: {exc.strerror}", cipher_path=name_path) from None
        if not data or len(data) > LONGNAME_FILE_MAX:
            raise CorruptName(label, f".name file has {len(data)} bytes", cipher_path=name_path)
        try:
            return data.decode("ascii")
        except UnicodeDecodeError:
            raise CorruptName(label, ".name file is not ASCII", cipher_path=name_path) from None

    def _list_dir(self, cipher_dir: str, rel_dir: str, *, strict: bool) -> list[tuple[str, os.DirEntry[str]]]:
        """``(plaintext name, entry)`` pairs of one stored directory, sorted by plaintext name (as bytes)."""
        is_root = rel_dir == ""
        names = self._names
        try:
            iv = self._dir_iv(cipher_dir, rel_dir) if names is not None else b""
        except CorruptName as err:
            if strict:
                raise
            self.skipped.append(err)
            return []
        out = []
        with os.scandir(cipher_dir) as it:
            entries = list(it)
        for entry in entries:
            disk = entry.name
            if is_root and disk == CONF_NAME:
                continue
            if names is None:
                out.append((disk, entry))
                continue
            if self.config.dir_iv and disk == DIRIV_NAME:
                continue
            try:
                encoded = disk
                if self.config.effective_long_name_max is not None:
                    if is_longname_file(disk):
                        continue
                    if is_longname_content(disk):
                        encoded = self._read_long_name(entry.path, rel_dir)
                try:
                    plain = names.decrypt(encoded, iv)
                except ValueError as exc:
                    label = f"{rel_dir}/{disk}" if rel_dir else disk
                    hint = " (an unfinished write)" if disk.endswith(PARTIAL_SUFFIX) else ""
                    raise CorruptName(label, f"name does not decrypt{hint}: {exc}", cipher_path=entry.path) from None
            except CorruptName as err:
                if strict:
                    raise
                self.skipped.append(err)
                continue
            out.append((plain, entry))
        out.sort(key=lambda pair: os.fsencode(pair[0]))
        return out

    def _entry(self, rel: str, cipher_path: str, st: os.stat_result) -> Entry:
        kind = _kind(st.st_mode)
        size = 0
        if kind == KIND_FILE:
            try:
                size = plain_size(st.st_size)
            except ValueError as exc:
                raise CorruptFile(rel, None, f"impossible size {st.st_size}: {exc}", cipher_path=cipher_path) from None
        return Entry(
            path=rel,
            kind=kind,
            cipher_path=cipher_path,
            mode=st.st_mode,
            size=size,
            mtime_ns=st.st_mtime_ns,
            atime_ns=st.st_atime_ns,
            nlink=st.st_nlink,
            inode=(st.st_dev, st.st_ino),
        )

    def walk(self, *, strict: bool = True) -> Iterator[Entry]:
        """All entries, depth first, a directory before its contents, siblings sorted by name.

        ``strict=False`` skips entries whose names do not decrypt (as the gocryptfs mount does) and records them in
        :attr:`skipped`; otherwise they raise :class:`CorruptName`.
        """
        yield from self._walk(self.path, "", strict=strict)

    def _walk(self, cipher_dir: str, rel_dir: str, *, strict: bool) -> Iterator[Entry]:
        for name, dir_entry in self._list_dir(cipher_dir, rel_dir, strict=strict):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            try:
                entry = self._entry(rel, dir_entry.path, dir_entry.stat(follow_symlinks=False))
            except CorruptionError as err:
                if strict:
                    raise
                self.skipped.append(err)
                continue
            yield entry
            if entry.kind == KIND_DIR:
                yield from self._walk(entry.cipher_path, rel, strict=strict)

    def iter_files(self) -> Iterator[tuple[str, BinaryIO]]:
        """``(plaintext path, open plaintext stream)`` for every regular file. Each stream is closed when the
        iteration moves on."""
        for entry in self.walk():
            if entry.kind == KIND_FILE:
                with self._open_entry(entry) as stream:
                    yield entry.path, stream

    def lookup(self, rel: str) -> Entry:
        """The entry for a plaintext path, found by encrypting each component (no directory listing)."""
        parts = [p for p in rel.split("/") if p]
        if not parts:
            raise ValueError("empty path")
        cipher_dir = self.path
        done: list[str] = []
        cipher_path = self.path
        for i, part in enumerate(parts):
            plain_name_bytes(part)
            if self._names is None:
                disk = part
            else:
                disk, _ = self._names.disk_name(part, self._dir_iv(cipher_dir, "/".join(done)))
            cipher_path = os.path.join(cipher_dir, disk)
            done.append(part)
            try:
                st = os.lstat(cipher_path)
            except FileNotFoundError:
                raise FileNotFoundError(2, "No such file or directory in the cipherdir", "/".join(done)) from None
            if i < len(parts) - 1:
                if not stat.S_ISDIR(st.st_mode):
                    raise NotADirectoryError(20, "Not a directory", "/".join(done))
                cipher_dir = cipher_path
        return self._entry("/".join(parts), cipher_path, st)

    # ------------------------------------------------------------------ contents
    def _open_entry(self, entry: Entry) -> io.BufferedReader:
        if entry.kind != KIND_FILE:
            raise IsADirectoryError(21, f"not a regular file ({entry.kind})", entry.path)
        raw = open(entry.cipher_path, "rb", buffering=0)  # noqa: SIM115 (owned by the returned reader)
        try:
            reader = DecryptingReader(raw, self._content, path=entry.path, cipher_path=entry.cipher_path)
        except BaseException:
            raw.close()
            raise
        return io.BufferedReader(reader, buffer_size=IO_BLOCKS * BLOCK_SIZE)

    def open(self, rel: str) -> io.BufferedReader:
        """A seekable plaintext stream of file ``rel`` (close it, or use ``with``)."""
        return self._open_entry(self.lookup(rel))

    def read_file(self, rel: str) -> bytes:
        """The whole plaintext of file ``rel`` (for small files; use :meth:`open` to stream)."""
        with self.open(rel) as f:
            return f.read()

    def read_link(self, rel: str) -> str:
        entry = self.lookup(rel)
        if entry.kind != KIND_SYMLINK:
            raise OSError(22, "not a symlink", rel)
        return self._link_target(entry)

    def _link_target(self, entry: Entry) -> str:
        stored = os.readlink(entry.cipher_path)
        if self._names is None or stored == "":
            return stored
        try:
            data = b64_decode(stored, raw64=self.config.raw64)
            return os.fsdecode(self._content.decrypt_block(data, 0, b""))
        except BlockError as exc:
            raise CorruptFile(entry.path, 0, f"symlink target: {exc.reason}", cipher_path=entry.cipher_path) from None
        except ValueError as exc:
            raise CorruptFile(entry.path, 0, f"symlink target: {exc}", cipher_path=entry.cipher_path) from None

    def decrypt_file(self, rel: str, dst_path: str | os.PathLike[str], *, progress: EventSink | None = None) -> int:
        """Decrypt file ``rel`` to ``dst_path`` (written under a temporary name, then renamed) with its mode."""
        entry = self.lookup(rel)
        if entry.kind != KIND_FILE:
            raise IsADirectoryError(21, f"not a regular file ({entry.kind})", rel)
        return decrypt_file(
            entry.cipher_path, dst_path, self._content, path=entry.path, mode=entry.mode, progress=progress
        )

    def decrypt_tree(
        self,
        dst_dir: str | os.PathLike[str],
        *,
        progress: EventSink | None = None,
        preserve_times: bool = True,
    ) -> TreeStats:
        """Decrypt everything into ``dst_dir`` (absent or empty): files with their modes, symlinks, directories,
        FIFOs, hard links. ``progress`` events: total plaintext bytes so far, ``text`` the path."""
        dst_root = os.path.abspath(os.fspath(dst_dir))
        _check_target_dir(dst_root)
        os.makedirs(dst_root, exist_ok=True)
        stats = TreeStats()
        started = time.monotonic()
        dir_fixups: list[tuple[str, Entry]] = []
        linked: dict[tuple[int, int], str] = {}
        for entry in self.walk():
            dst = os.path.join(dst_root, *entry.path.split("/"))
            times = (entry.atime_ns, entry.mtime_ns)
            if entry.kind == KIND_DIR:
                os.mkdir(dst, 0o700)
                dir_fixups.append((dst, entry))
                stats.dirs += 1
            elif entry.kind == KIND_FILE:
                first = linked.get(entry.inode) if entry.nlink > 1 else None
                if first is not None:
                    os.link(first, dst)
                    stats.hardlinks += 1
                    continue
                base = stats.plain_bytes

                def report(event: Event, base: int = base) -> None:
                    if progress is not None and event.done:
                        progress(replace(event, done=base + event.done))

                size = decrypt_file(
                    entry.cipher_path, dst, self._content, path=entry.path, mode=entry.mode, progress=report
                )
                if preserve_times:
                    os.utime(dst, ns=times)
                if entry.nlink > 1:
                    linked[entry.inode] = dst
                stats.files += 1
                stats.plain_bytes += size
                stats.cipher_bytes += cipher_size(size)
                if progress is not None:
                    progress(progress_event(stats.plain_bytes, None, text=entry.path))
            elif entry.kind == KIND_SYMLINK:
                os.symlink(self._link_target(entry), dst)
                if preserve_times:
                    os.utime(dst, ns=times, follow_symlinks=False)
                stats.symlinks += 1
            elif entry.kind == KIND_FIFO:
                os.mkfifo(dst, 0o600)
                os.chmod(dst, stat.S_IMODE(entry.mode))
                stats.fifos += 1
            else:
                raise UnsupportedFileType(f"{entry.path}: cannot decrypt a device node or socket")
        for dst, entry in reversed(dir_fixups):
            os.chmod(dst, stat.S_IMODE(entry.mode))
            if preserve_times:
                os.utime(dst, ns=(entry.atime_ns, entry.mtime_ns))
        stats.seconds = time.monotonic() - started
        return stats

    def check(self) -> list[CorruptionError]:
        """Read and authenticate every name, file block and symlink (like ``gocryptfs -fsck``); return the
        problems found (empty when all is well)."""
        problems: list[CorruptionError] = []
        self.skipped = []
        buf = bytearray(IO_BLOCKS * BLOCK_SIZE)
        for entry in self.walk(strict=False):
            try:
                if entry.kind == KIND_FILE:
                    with self._open_entry(entry) as f:
                        while f.readinto(buf):
                            pass
                elif entry.kind == KIND_SYMLINK:
                    self._link_target(entry)
            except CorruptionError as err:
                problems.append(err)
        return self.skipped + problems


def decrypt_file(
    cipher_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    content_key: bytes | ContentCipher,
    *,
    path: str | None = None,
    mode: int | None = None,
    progress: EventSink | None = None,
) -> int:
    """Decrypt one stored file with the content key to ``dst_path`` (temp name + rename); return its size.
    ``path`` names the file in errors and progress (default: ``cipher_path``)."""
    src = os.fspath(cipher_path)
    dst = os.fspath(dst_path)
    tmp = partial_path(dst)
    label = path if path is not None else src
    try:
        with open(src, "rb", buffering=0) as f, open(tmp, "wb") as out:
            size = decrypt_stream(f, out, as_cipher(content_key), path=label, cipher_path=src, progress=progress)
        if mode is not None:
            os.chmod(tmp, stat.S_IMODE(mode))
        os.replace(tmp, dst)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return size


def open_cipherdir(cipher_dir: str | os.PathLike[str], password: bytes | str) -> Cipherdir:
    """Load ``gocryptfs.conf`` and unlock it. Raises NotACipherdir, UnsupportedConfig, WrongPassword."""
    return Cipherdir.unlock(cipher_dir, password)


def verify_password(cipher_dir: str | os.PathLike[str], password: bytes | str) -> bool:
    """Whether ``password`` unlocks the cipherdir (NotACipherdir/UnsupportedConfig still raise)."""
    return load_config(cipher_dir).check_password(password)


def decrypt_tree(
    cipher_dir: str | os.PathLike[str],
    dst_dir: str | os.PathLike[str],
    password: bytes | str,
    *,
    progress: EventSink | None = None,
    preserve_times: bool = True,
) -> TreeStats:
    """Decrypt the whole cipherdir into ``dst_dir`` (absent or empty)."""
    return open_cipherdir(cipher_dir, password).decrypt_tree(dst_dir, progress=progress, preserve_times=preserve_times)
