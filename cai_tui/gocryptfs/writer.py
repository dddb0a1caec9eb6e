"""Write a new gocryptfs cipherdir from plaintext, without FUSE.

The result mounts with the real ``gocryptfs`` and passes ``gocryptfs -fsck``. What is written, per entry:

* directories: encrypted name, a fresh ``gocryptfs.diriv`` (16 random bytes, mode 0444), the plaintext mode bits;
* regular files: encrypted name, contents in the gocryptfs format, the plaintext mode bits (as gocryptfs keeps them);
  empty files are 0 bytes without a header;
* symlinks: the target encrypted as one block (AAD = block number 0 only), Raw64-encoded;
* FIFOs: a FIFO under the encrypted name (as gocryptfs' ``mknod``);
* long names (plaintext of 176 bytes or more): ``gocryptfs.longname.<hash>`` plus ``<hash>.name`` (mode 0444);
* hard links within the tree stay hard links; modification times are kept (``preserve_times``).

Crash safety: every file is written under ``<final name>`` + :data:`PARTIAL_SUFFIX` and renamed when complete, and
``gocryptfs.conf`` (mode 0400) is written last, so an interrupted run leaves no file under a final name that is not
complete, and the directory is not a cipherdir at all until everything is in place. A leftover partial file does not
decrypt as a name, so ``gocryptfs -fsck`` reports it.

Memory stays bounded (1-MiB buffers) whatever the file sizes. With ``workers > 1`` a ``ProcessPoolExecutor`` encrypts
whole small files and block ranges of large files (:func:`~cai_tui.gocryptfs.content.encrypt_block_range`) in
parallel; names, directories and renames stay in the calling process. The pool uses the ``spawn`` start method (safe
in a process with threads, such as a TUI); as with any ``spawn`` pool, a script that calls this at import time needs
an ``if __name__ == "__main__":`` guard. Pass ``mp_context`` to choose otherwise.
"""

from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import signal
import stat
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, BinaryIO

from ..events import NEVER, CancelToken, Event, EventSink
from ..events import progress as progress_event
from .config import GocryptfsConfig, create_config
from .content import (
    BLOCK_SIZE,
    ContentCipher,
    as_cipher,
    block_count,
    cipher_size,
    encrypt_block_range,
    encrypt_stream,
    new_file_id,
    prepare_cipher_file,
)
from .errors import CipherdirNotEmpty, UnsupportedConfig, UnsupportedFileType
from .names import CONF_NAME, DIRIV_LEN, DIRIV_NAME, LONGNAME_SUFFIX, NameCipher, b64_encode
from .stats import TreeStats

PARTIAL_SUFFIX = ".cai-partial"
"""Suffix of files being written. Contains a dot, which Raw64 names never do, so it never clashes."""
DEFAULT_PARALLEL_MIN_SIZE = 32 << 20
"""With ``workers > 1``, files at least this large are split into block ranges; smaller ones go whole."""
DEFAULT_RANGE_BLOCKS = 4096
"""Blocks per range job (16 MiB of plaintext)."""

TimesNs = tuple[int, int]


def partial_path(dst: str) -> str:
    """The temporary name a file is written under before it is renamed to ``dst``: ``dst`` + :data:`PARTIAL_SUFFIX`,
    or, where that would exceed 255 bytes, a hidden name derived from a hash of the base name."""
    head, base = os.path.split(dst)
    if len(os.fsencode(base)) + len(PARTIAL_SUFFIX) <= 255:
        return dst + PARTIAL_SUFFIX
    digest = hashlib.sha256(os.fsencode(base)).hexdigest()[:32]
    return os.path.join(head, f".{digest}{PARTIAL_SUFFIX}")


# ---------------------------------------------------------------------------------------------------------- one file
def _finish(tmp: str, dst: str, mode: int | None, times_ns: TimesNs | None, fsync: bool) -> None:
    if mode is not None:
        os.chmod(tmp, stat.S_IMODE(mode))
    if times_ns is not None:
        os.utime(tmp, ns=times_ns)
    if fsync:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, dst)


def encrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    content_key: bytes | ContentCipher,
    *,
    file_id: bytes | None = None,
    mode: int | None = None,
    times_ns: TimesNs | None = None,
    progress: EventSink | None = None,
    path: str | None = None,
    fsync: bool = False,
) -> int:
    """Encrypt the plaintext file ``src_path`` to ``dst_path`` (a ciphertext name chosen by the caller).

    Writes :func:`partial_path` (``dst_path + PARTIAL_SUFFIX``) and renames it when complete (after ``chmod(mode)``
    and ``utime``); on error the partial file is removed. A ``progress`` event (bytes done in this file, ``text`` the
    path) after every MiB. Returns the plaintext size. A top-level function with picklable arguments, for process pools.
    """
    dst = os.fspath(dst_path)
    tmp = partial_path(dst)
    label = path if path is not None else os.fspath(src_path)
    try:
        with open(src_path, "rb") as src, open(tmp, "wb") as out:
            size = encrypt_stream(src, out, content_key, file_id=file_id, progress=progress, path=label)
        _finish(tmp, dst, mode, times_ns, fsync)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if progress is not None and size == 0:
        progress(progress_event(0, 0, text=label))
    return size


def encrypt_fileobj(
    src: BinaryIO,
    dst_path: str | os.PathLike[str],
    content_key: bytes | ContentCipher,
    *,
    mode: int = 0o644,
    progress: EventSink | None = None,
    path: str = "",
    fsync: bool = False,
) -> int:
    """Like :func:`encrypt_file` for an open binary stream (a download, a pipe): no seeking, bounded memory."""
    dst = os.fspath(dst_path)
    tmp = partial_path(dst)
    try:
        with open(tmp, "wb") as out:
            size = encrypt_stream(src, out, content_key, progress=progress, path=path)
        _finish(tmp, dst, mode, None, fsync)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return size


def split_block_ranges(plain_size: int, range_blocks: int = DEFAULT_RANGE_BLOCKS) -> list[tuple[int, int]]:
    """``[first, end)`` block ranges covering a file of ``plain_size`` bytes, ``range_blocks`` blocks each."""
    if range_blocks < 1:
        raise ValueError("range_blocks must be positive")
    total = block_count(plain_size)
    return [(i, min(i + range_blocks, total)) for i in range(0, total, range_blocks)]


def range_plain_bytes(plain_size: int, first_block: int, end_block: int) -> int:
    """Plaintext bytes in blocks ``[first_block, end_block)`` of a file of ``plain_size`` bytes."""
    return max(0, min(end_block * BLOCK_SIZE, plain_size) - first_block * BLOCK_SIZE)


def _worker_init() -> None:
    """Pool processes leave Ctrl-C to the parent: it cancels, lets the jobs in flight end and shuts the pool down
    (a worker killed by the terminal's SIGINT would break the pool instead)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _write_small(path: str, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fchmod(fd, mode)  # exact mode whatever the umask
    finally:
        os.close(fd)


def _is_empty_dir(path: str) -> bool:
    with os.scandir(path) as it:
        return next(it, None) is None


def _check_target_dir(path: str) -> None:
    if os.path.lexists(path) and (not os.path.isdir(path) or os.path.islink(path) or not _is_empty_dir(path)):
        raise CipherdirNotEmpty(f"{path} exists and is not an empty directory")


# ---------------------------------------------------------------------------------------------------------- writer
@dataclass
class _Dir:
    cipher_path: str
    iv: bytes


@dataclass
class _BigFile:
    rel: str
    tmp: str
    dst: str
    mode: int
    times_ns: TimesNs | None
    parts_left: int


class CipherdirWriter:
    """Build a new cipherdir entry by entry (``mkdir``, ``add_file``, ``add_fileobj``, ``add_symlink``, ``add_tree``),
    then :meth:`finish`, which waits for pending work and writes ``gocryptfs.conf`` last.

    Use as a context manager: on an exception the pool is shut down and no config is written. Plaintext paths are
    relative, ``/``-separated; parents must exist (``add_tree`` creates them in order).

    ``progress`` receives ``progress`` events (plaintext bytes so far of ``total_bytes``, ``text`` the path);
    ``cancel`` is checked between files and chunks: once set, :class:`~cai_tui.events.Cancelled` is raised, the
    jobs in flight end, their partial files are removed and no config is written.
    """

    def __init__(
        self,
        cipher_dir: str | os.PathLike[str],
        config: GocryptfsConfig,
        master_key: bytes,
        *,
        workers: int = 1,
        progress: EventSink | None = None,
        preserve_times: bool = True,
        fsync: bool = False,
        parallel_min_size: int = DEFAULT_PARALLEL_MIN_SIZE,
        range_blocks: int = DEFAULT_RANGE_BLOCKS,
        mp_context: Any = None,
        cancel: CancelToken = NEVER,
        total_bytes: int | None = None,
    ) -> None:
        if not config.is_default_format:
            raise UnsupportedConfig("the writer writes only the default gocryptfs format")
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.cipher_dir = os.path.abspath(os.fspath(cipher_dir))
        _check_target_dir(self.cipher_dir)
        keys = config.keys(master_key)
        self._config = config
        self._names = NameCipher(keys.names)
        self._content = ContentCipher(keys.content)
        self._workers = workers
        self._progress = progress
        self._cancel = cancel
        self.total_bytes = total_bytes
        self._preserve_times = preserve_times
        self._fsync = fsync
        self._parallel_min_size = parallel_min_size
        self._range_blocks = range_blocks
        self._mp_context = mp_context
        self._pool: ProcessPoolExecutor | None = None
        self._inflight: dict[Future[int], Callable[[int], None]] = {}
        self._dirs: dict[str, _Dir] = {}
        self._dir_fixups: list[tuple[str, int, TimesNs | None]] = []
        self._hardlinks: dict[tuple[int, int], str] = {}
        self._links_todo: list[tuple[str, str]] = []
        self._big_files: list[_BigFile] = []
        self._started = time.monotonic()
        self._finished = False
        self.stats = TreeStats()
        os.makedirs(self.cipher_dir, exist_ok=True)
        root_st = os.stat(self.cipher_dir)
        self._cipher_root_id = (root_st.st_dev, root_st.st_ino)
        iv = self._write_diriv(self.cipher_dir)
        self._dirs[""] = _Dir(self.cipher_dir, iv)

    # ------------------------------------------------------------------ helpers
    def __enter__(self) -> CipherdirWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.finish()
        else:
            self.abort()

    @staticmethod
    def _write_diriv(cipher_dir: str) -> bytes:
        while True:
            iv = os.urandom(DIRIV_LEN)
            if iv != bytes(DIRIV_LEN):
                break
        _write_small(os.path.join(cipher_dir, DIRIV_NAME), iv, 0o444)
        return iv

    def _place(self, rel: str) -> tuple[str, str]:
        """Create the ``.name`` file if needed; return ``(cipher path, normalized rel)``."""
        rel = rel.strip("/")
        if not rel:
            raise ValueError("empty path")
        parent_rel, _, name = rel.rpartition("/")
        parent = self._dirs.get(parent_rel)
        if parent is None:
            raise FileNotFoundError(f"parent directory {parent_rel!r} of {rel!r} was not added")
        disk_name, long_name = self._names.disk_name(name, parent.iv)
        cipher_path = os.path.join(parent.cipher_path, disk_name)
        if long_name is not None:
            name_file = cipher_path + LONGNAME_SUFFIX
            _unlink_quietly(name_file)
            _write_small(name_file, long_name.encode("ascii"), 0o444)
        return cipher_path, rel

    def _report(self, rel: str) -> None:
        if self._progress is not None:
            self._progress(progress_event(self.stats.plain_bytes, self.total_bytes, text=rel))

    def _file_report(self, rel: str) -> Callable[[Event], None]:
        """The per-chunk callback of a file encrypted here: checks ``cancel``, reports the running total."""
        base = self.stats.plain_bytes
        progress, cancel, total = self._progress, self._cancel, self.total_bytes

        def report(event: Event) -> None:
            cancel.check()
            if progress is not None and event.done:
                progress(replace(event, done=base + (event.done or 0), total=total, text=rel))

        return report

    def _times(self, st: os.stat_result | None) -> TimesNs | None:
        if st is None or not self._preserve_times:
            return None
        return (st.st_atime_ns, st.st_mtime_ns)

    # ------------------------------------------------------------------ pool
    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            ctx = self._mp_context or multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self._workers, mp_context=ctx, initializer=_worker_init)
        return self._pool

    def _submit(self, on_done: Callable[[int], None], fn: Callable[..., int], *args: Any, **kwargs: Any) -> None:
        pool = self._ensure_pool()
        while len(self._inflight) >= 2 * self._workers:
            self._collect(FIRST_COMPLETED)
        self._cancel.check()
        self._inflight[pool.submit(fn, *args, **kwargs)] = on_done

    def _collect(self, return_when: str) -> None:
        done, _ = wait(list(self._inflight), return_when=return_when)
        for future in done:
            on_done = self._inflight.pop(future)
            on_done(future.result())

    # ------------------------------------------------------------------ entries
    def mkdir(self, rel: str, *, mode: int = 0o755, times_ns: TimesNs | None = None) -> str:
        """Create directory ``rel`` (its final mode and times are applied in :meth:`finish`)."""
        cipher_path, rel = self._place(rel)
        os.mkdir(cipher_path, 0o700)
        iv = self._write_diriv(cipher_path)
        self._dirs[rel] = _Dir(cipher_path, iv)
        self._dir_fixups.append((cipher_path, stat.S_IMODE(mode), times_ns))
        self.stats.dirs += 1
        return cipher_path

    def add_symlink(self, rel: str, target: str | bytes, *, times_ns: TimesNs | None = None) -> str:
        raw = os.fsencode(target)
        encoded = b64_encode(self._content.encrypt_block(raw, 0, b"")) if raw else ""
        cipher_path, rel = self._place(rel)
        os.symlink(encoded, cipher_path)
        if times_ns is not None:
            os.utime(cipher_path, ns=times_ns, follow_symlinks=False)
        self.stats.symlinks += 1
        return cipher_path

    def add_fifo(self, rel: str, *, mode: int = 0o644, times_ns: TimesNs | None = None) -> str:
        cipher_path, rel = self._place(rel)
        os.mkfifo(cipher_path, 0o600)
        os.chmod(cipher_path, stat.S_IMODE(mode))
        if times_ns is not None:
            os.utime(cipher_path, ns=times_ns)
        self.stats.fifos += 1
        return cipher_path

    def add_fileobj(self, src: BinaryIO, rel: str, *, mode: int = 0o644) -> int:
        """Encrypt an open stream into file ``rel`` now (synchronously); return its plaintext size."""
        self._cancel.check()
        cipher_path, rel = self._place(rel)
        report = self._file_report(rel)
        size = encrypt_fileobj(src, cipher_path, self._content, mode=mode, progress=report, path=rel, fsync=self._fsync)
        self._count_file(rel, size)
        return size

    def _count_file(self, rel: str, size: int) -> None:  # also the completion callback of whole-file jobs
        self.stats.files += 1
        self.stats.plain_bytes += size
        self.stats.cipher_bytes += cipher_size(size)
        self._report(rel)

    def add_file(self, src_path: str | os.PathLike[str], rel: str, *, st: os.stat_result | None = None) -> None:
        """Encrypt regular file ``src_path`` as ``rel``, keeping its mode (and times). With ``workers > 1`` this may
        return before the file is complete; :meth:`finish` waits."""
        self._cancel.check()
        src = os.fspath(src_path)
        if st is None:
            st = os.stat(src)
        if not stat.S_ISREG(st.st_mode):
            raise UnsupportedFileType(f"{src}: not a regular file")
        if st.st_nlink > 1:
            first = self._hardlinks.get((st.st_dev, st.st_ino))
            if first is not None:
                cipher_path, rel = self._place(rel)
                self._links_todo.append((first, cipher_path))
                return
        cipher_path, rel = self._place(rel)
        if st.st_nlink > 1:
            self._hardlinks[(st.st_dev, st.st_ino)] = cipher_path
        mode = st.st_mode
        times = self._times(st)
        size = st.st_size
        if self._workers == 1:
            report = self._file_report(rel)
            done = encrypt_file(
                src, cipher_path, self._content, mode=mode, times_ns=times, progress=report, path=rel, fsync=self._fsync
            )
            self._count_file(rel, done)
        elif size < self._parallel_min_size:
            self._submit(
                functools.partial(self._count_file, rel),
                encrypt_file,
                src,
                cipher_path,
                self._content.key,
                mode=mode,
                times_ns=times,
                fsync=self._fsync,
            )
        else:
            self._add_big_file(src, cipher_path, rel, size, mode, times)

    def _add_big_file(self, src: str, dst: str, rel: str, size: int, mode: int, times: TimesNs | None) -> None:
        tmp = partial_path(dst)
        _unlink_quietly(tmp)
        file_id = new_file_id()
        prepare_cipher_file(tmp, file_id, size)
        ranges = split_block_ranges(size, self._range_blocks)
        job = _BigFile(rel=rel, tmp=tmp, dst=dst, mode=mode, times_ns=times, parts_left=len(ranges))
        self._big_files.append(job)
        self.stats.files += 1
        self.stats.cipher_bytes += cipher_size(size)
        for first, end in ranges:
            expected = range_plain_bytes(size, first, end)

            def on_done(done: int, expected: int = expected, job: _BigFile = job) -> None:
                if done != expected:
                    raise OSError(f"{job.rel}: source changed while encrypting (read {done} of {expected} bytes)")
                self.stats.plain_bytes += done
                job.parts_left -= 1
                if job.parts_left == 0:
                    _finish(job.tmp, job.dst, job.mode, job.times_ns, self._fsync)
                self._report(job.rel)

            self._submit(on_done, encrypt_block_range, src, tmp, self._content.key, file_id, first, end)

    def add_tree(self, src_dir: str | os.PathLike[str], rel: str = "") -> None:
        """Add everything under ``src_dir`` (not following symlinks) below ``rel`` (which must exist; "" = root)."""
        src_root = os.fspath(src_dir)
        if not os.path.isdir(src_root):
            raise NotADirectoryError(f"{src_root} is not a directory")
        rel = rel.strip("/")
        if rel not in self._dirs:
            raise FileNotFoundError(f"directory {rel!r} was not added")
        self._add_dir_contents(src_root, rel)

    def _add_dir_contents(self, src_dir: str, rel_dir: str) -> None:
        with os.scandir(src_dir) as it:
            entries = sorted(it, key=lambda e: os.fsencode(e.name))
        for entry in entries:
            self._cancel.check()
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            mode = st.st_mode
            if (st.st_dev, st.st_ino) == self._cipher_root_id:
                continue  # the cipherdir being written lies inside the source tree: never encrypt it into itself
            if stat.S_ISDIR(mode):
                self.mkdir(rel, mode=mode, times_ns=self._times(st))
                self._add_dir_contents(entry.path, rel)
            elif stat.S_ISREG(mode):
                self.add_file(entry.path, rel, st=st)
            elif stat.S_ISLNK(mode):
                self.add_symlink(rel, os.readlink(os.fsencode(entry.path)), times_ns=self._times(st))
            elif stat.S_ISFIFO(mode):
                self.add_fifo(rel, mode=mode, times_ns=self._times(st))
            else:
                raise UnsupportedFileType(f"{entry.path}: cannot encrypt a device node or socket")

    # ------------------------------------------------------------------ end
    def wait(self) -> None:
        """Wait until all submitted files are complete."""
        while self._inflight:
            self._collect(FIRST_COMPLETED)
            self._cancel.check()

    def finish(self) -> TreeStats:
        """Complete pending work, create hard links, apply directory modes and times, write ``gocryptfs.conf``."""
        if self._finished:
            return self.stats
        try:
            self.wait()
        except BaseException:
            self.abort()
            raise
        self._shutdown_pool()
        for first, link in self._links_todo:
            os.link(first, link)
            self.stats.hardlinks += 1
        for cipher_path, mode, times in reversed(self._dir_fixups):
            os.chmod(cipher_path, mode)
            if times is not None:
                os.utime(cipher_path, ns=times)
        self._config.write(os.path.join(self.cipher_dir, CONF_NAME))
        self._finished = True
        self.stats.seconds = time.monotonic() - self._started
        return self.stats

    def abort(self) -> None:
        """Stop without writing ``gocryptfs.conf`` (the directory stays a non-cipherdir)."""
        self._finished = True
        for future in self._inflight:
            future.cancel()
        self._inflight.clear()
        self._shutdown_pool()
        for job in self._big_files:
            _unlink_quietly(job.tmp)  # a large file whose ranges were in flight: its partial file goes too

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def tree_plain_bytes(src_dir: str | os.PathLike[str], *, skip: frozenset[str] = frozenset()) -> int:
    """The plaintext bytes an encryption of ``src_dir`` writes: regular files, each hard-linked inode once (names
    in ``skip`` at the top are left out)."""
    root = os.fspath(src_dir)
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if dirpath == root and name in skip:
                continue
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if not stat.S_ISREG(st.st_mode) or (st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen):
                continue
            if st.st_nlink > 1:
                seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def encrypt_tree(
    src_dir: str | os.PathLike[str],
    cipher_dir: str | os.PathLike[str],
    password: bytes | str,
    *,
    workers: int = 1,
    progress: EventSink | None = None,
    preserve_times: bool = True,
    fsync: bool = False,
    creator: str | None = None,
    cancel: CancelToken = NEVER,
) -> TreeStats:
    """Encrypt the plaintext tree ``src_dir`` into the new cipherdir ``cipher_dir`` (absent or empty) with the
    default gocryptfs settings (scrypt N=65536) and ``password``. Returns counts, bytes and seconds. ``progress``
    events carry the tree's plaintext size as ``total``; a set ``cancel`` raises :class:`~cai_tui.events.Cancelled`
    and leaves ``cipher_dir`` without ``gocryptfs.conf``."""
    src = os.fspath(src_dir)
    if not os.path.isdir(src):
        raise NotADirectoryError(f"{src} is not a directory")
    _check_target_dir(os.fspath(cipher_dir))
    config, master_key = create_config(password, creator=creator)
    with CipherdirWriter(
        cipher_dir,
        config,
        master_key,
        workers=workers,
        progress=progress,
        preserve_times=preserve_times,
        fsync=fsync,
        cancel=cancel,
        total_bytes=tree_plain_bytes(src) if progress is not None else None,
    ) as writer:
        writer.add_tree(src)
    return writer.stats


__all__ = [
    "DEFAULT_PARALLEL_MIN_SIZE",
    "DEFAULT_RANGE_BLOCKS",
    "PARTIAL_SUFFIX",
    "CipherdirWriter",
    "as_cipher",
    "encrypt_file",
    "encrypt_fileobj",
    "encrypt_tree",
    "range_plain_bytes",
    "split_block_ranges",
    "tree_plain_bytes",
]
