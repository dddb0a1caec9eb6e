"""The integrity manifest: a SHA-256 of every plaintext file, stored *inside* the encrypted tree.

gocryptfs authenticates each 4 KiB block but accepts an all-zero block as a file hole, and a file cut at a block
boundary is still well-formed; so the encryption writes ``.cai-manifest.json`` (version, algorithm, tool,
``files: {relpath: {size, sha256}}``, ``symlinks: {relpath: target}``) into the plaintext view. It decrypts along with
the model, and :func:`verify_cipherdir` (with the password, streaming through the native reader) or
:func:`verify_plain` (a decrypted or mounted tree, e.g. MODEL_MOUNT_POINT on the instance) names every file that is
modified, truncated, missing, extra, or does not decrypt.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import stat
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from ..events import NEVER, CancelToken, EventSink
from ..events import progress as progress_event
from . import ActionError

MANIFEST_NAME = ".cai-manifest.json"
MANIFEST_VERSION = 1
ALGORITHM = "sha256"
MARKER_NAME = "CAI-INCOMPLETE"
"""Written into a destination while it is being filled; present ⇒ the output is not complete."""
CHUNK = 1 << 20

# Progress goes to an EventSink as ``progress`` events: bytes hashed so far of ``total``, ``text`` the relative path.


# -------------------------------------------------------------------------------------------------------- building
def _hash_stream(stream: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> tuple[int, str]:
    h = hashlib.sha256()
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    size = 0
    while True:
        n = stream.readinto(view)  # type: ignore[attr-defined]
        if not n:
            break
        h.update(view[:n])
        size += n
        if on_bytes is not None:
            on_bytes(n)
    return size, h.hexdigest()


def iter_tree(root: str) -> Iterator[tuple[str, str, os.stat_result]]:
    """``(relative path, full path, lstat)`` of every entry below ``root``, sorted, without following symlinks."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if stat.S_ISDIR(st.st_mode) and not stat.S_ISLNK(st.st_mode) and name in dirnames:
                continue
            yield os.path.relpath(full, root).replace(os.sep, "/"), full, st


class _Counter:
    def __init__(self, progress: EventSink | None, total: int | None) -> None:
        self.done = 0
        self.total = total
        self._lock = threading.Lock()
        self._progress = progress

    def add(self, n: int, rel: str) -> None:
        with self._lock:  # reported under the lock: the hashing threads' totals reach the sink in order
            self.done += n
            if self._progress is not None:
                self._progress(progress_event(self.done, self.total, text=rel))


def build_manifest(
    root: str | os.PathLike[str],
    *,
    threads: int = 2,
    progress: EventSink | None = None,
    cancel: CancelToken = NEVER,
) -> dict[str, Any]:
    """Hash every regular file below ``root`` (the manifest itself excluded); symlinks are recorded by target.
    A set ``cancel`` makes it raise :class:`~cai_tui.events.Cancelled` within one 1-MiB chunk."""
    from .. import __version__

    src = os.fspath(root)
    files: list[tuple[str, str]] = []
    symlinks: dict[str, str] = {}
    total = 0
    for rel, full, st in iter_tree(src):
        if rel == MANIFEST_NAME:
            continue
        if stat.S_ISREG(st.st_mode):
            files.append((rel, full))
            total += st.st_size
        elif stat.S_ISLNK(st.st_mode):
            symlinks[rel] = os.readlink(full)
    counter = _Counter(progress, total)

    def one(item: tuple[str, str]) -> tuple[str, dict[str, Any]]:
        rel, full = item

        def on_bytes(n: int) -> None:
            cancel.check()
            counter.add(n, rel)

        with open(full, "rb", buffering=0) as f:
            size, digest = _hash_stream(f, on_bytes)
        return rel, {"size": size, "sha256": digest}

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:  # hashlib releases the GIL on large updates
        hashed = dict(pool.map(one, files))
    return {
        "version": MANIFEST_VERSION,
        "algorithm": ALGORITHM,
        "created_by": f"cai-tui {__version__}",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "file_count": len(hashed),
        "total_bytes": sum(v["size"] for v in hashed.values()),
        "files": hashed,
        "symlinks": symlinks,
    }


def manifest_bytes(manifest: dict[str, Any]) -> bytes:
    return (json.dumps(manifest, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def parse_manifest(data: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ValueError(f"{where}: {MANIFEST_NAME} is not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("algorithm") != ALGORITHM or not isinstance(doc.get("files"), dict):
        raise ValueError(f"{where}: {MANIFEST_NAME} is not a cai-tui manifest (algorithm sha256, files{{}})")
    if doc.get("version") != MANIFEST_VERSION:
        raise ValueError(f"{where}: {MANIFEST_NAME} has version {doc.get('version')!r}; this tool reads 1")
    return doc


# -------------------------------------------------------------------------------------------------------- verifying
@dataclass
class VerifyReport:
    root: str
    checked: int = 0
    checked_bytes: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)  # (relative path, what is wrong)
    expected_files: int = 0

    @property
    def ok(self) -> bool:
        return not self.bad


class _Comparer:
    """Compares what is found against a manifest; collects the problems."""

    def __init__(self, report: VerifyReport, manifest: dict[str, Any], progress: EventSink | None) -> None:
        self.report = report
        self.expected: dict[str, dict[str, Any]] = manifest["files"]
        self.links: dict[str, str] = manifest.get("symlinks") or {}
        self.seen: set[str] = set()
        total = sum(int(v.get("size") or 0) for v in self.expected.values() if isinstance(v, dict))
        self.counter = _Counter(progress, total)
        report.expected_files = len(self.expected)

    def file(self, rel: str, size: int, open_stream: Callable[[], BinaryIO]) -> None:
        """Check one file; ``open_stream`` may raise errors that name a corrupt block (caught by the caller)."""
        want = self.expected.get(rel)
        if want is None:
            self.report.bad.append((rel, "extra: not in the manifest"))
            return
        self.seen.add(rel)
        if size < want["size"]:
            self.report.bad.append((rel, f"truncated: {size} of {want['size']} bytes"))
            return
        if size > want["size"]:
            self.report.bad.append((rel, f"size differs: {size} bytes, the manifest says {want['size']}"))
            return
        with open_stream() as stream:
            got_size, digest = _hash_stream(stream, lambda n: self.counter.add(n, rel))
        self.report.checked += 1
        self.report.checked_bytes += got_size
        if got_size != want["size"]:
            self.report.bad.append((rel, f"truncated while reading: {got_size} of {want['size']} bytes"))
        elif digest != want["sha256"]:
            self.report.bad.append((rel, "content differs from the manifest (modified or zeroed block)"))

    def symlink(self, rel: str, target: str) -> None:
        want = self.links.get(rel)
        if want is None:
            self.report.bad.append((rel, "extra: symlink not in the manifest"))
        elif want != target:
            self.report.bad.append((rel, f"symlink points to {target!r}, the manifest says {want!r}"))
        self.seen.add(rel)

    def finish(self) -> VerifyReport:
        for rel in sorted(set(self.expected) - self.seen):
            self.report.bad.append((rel, "missing"))
        for rel in sorted(set(self.links) - self.seen):
            self.report.bad.append((rel, "missing (symlink)"))
        self.report.bad.sort()
        return self.report


def _open_raw(path: str) -> BinaryIO:
    return open(path, "rb", buffering=0)


def verify_plain(root: str | os.PathLike[str], *, progress: EventSink | None = None) -> VerifyReport:
    """Check a plaintext tree (decrypted, or the mount at MODEL_MOUNT_POINT) against its own manifest."""
    top = os.path.abspath(os.fspath(root))
    if not os.path.isdir(top):
        raise ActionError(f"{top} is not a directory")
    path = os.path.join(top, MANIFEST_NAME)
    try:
        with open(path, "rb") as f:
            manifest = parse_manifest(f.read(), top)
    except FileNotFoundError:
        if os.path.exists(os.path.join(top, "gocryptfs.conf")):
            raise ActionError(f"{top} is a cipherdir: verify it without --plain, with --password-file") from None
        raise ActionError(
            f"{top} has no {MANIFEST_NAME}: it was not encrypted by cai-tui, or this is not the model's root "
            "(with the seed's `cp -r`, the model sits one folder down)",
            1,
        ) from None
    except (OSError, ValueError) as exc:
        raise ActionError(str(exc), 1) from None
    cmp = _Comparer(VerifyReport(top), manifest, progress)
    for rel, full, st in iter_tree(top):
        if rel == MANIFEST_NAME:
            continue
        if stat.S_ISREG(st.st_mode):
            try:
                cmp.file(rel, st.st_size, functools.partial(_open_raw, full))
            except OSError as exc:
                cmp.report.bad.append((rel, f"cannot be read: {exc.strerror or exc}"))
        elif stat.S_ISLNK(st.st_mode):
            cmp.symlink(rel, os.readlink(full))
    return cmp.finish()


def _open_cipherdir(cipher_dir: str, password: bytes) -> Any:
    from ..gocryptfs import NotACipherdir, UnsupportedConfig, WrongPassword, open_cipherdir

    if os.path.exists(os.path.join(cipher_dir, MARKER_NAME)):
        raise ActionError(
            f"{cipher_dir} is an unfinished encryption ({MARKER_NAME} marker present): it is not a usable model. "
            "Delete it and run `cai-tui model encrypt` again.",
            1,
        )
    if not os.path.isdir(cipher_dir):
        raise ActionError(f"{cipher_dir} is not a directory")
    try:
        return open_cipherdir(cipher_dir, password)
    except WrongPassword:
        raise ActionError(
            f"wrong password for {cipher_dir}: the first line of the password file does not unlock its gocryptfs.conf "
            "(or that file was altered)"
        ) from None
    except NotACipherdir as exc:
        hint = ""
        if os.path.exists(os.path.join(cipher_dir, MANIFEST_NAME)):
            hint = f"; it holds a plaintext {MANIFEST_NAME}: to check a decrypted model use --plain"
        raise ActionError(
            f"{cipher_dir}: gocryptfs.conf is missing or corrupt ({exc}); not a usable cipherdir{hint}"
        ) from None
    except UnsupportedConfig as exc:
        raise ActionError(f"{cipher_dir}: unsupported gocryptfs.conf ({exc})") from None


def verify_cipherdir(
    cipher_dir: str | os.PathLike[str], password: bytes, *, progress: EventSink | None = None
) -> VerifyReport:
    """Decrypt (streaming, nothing written) and check every file of a cipherdir against the manifest inside it."""
    from ..gocryptfs import CorruptionError

    top = os.path.abspath(os.fspath(cipher_dir))
    cd = _open_cipherdir(top, password)
    try:
        manifest = parse_manifest(cd.read_file(MANIFEST_NAME), top)
    except FileNotFoundError:
        raise ActionError(
            f"{top} has no {MANIFEST_NAME} inside: it was not encrypted by cai-tui; only gocryptfs' own block "
            "authentication can be checked (`gocryptfs -fsck`), which misses zeroed blocks and truncation",
            1,
        ) from None
    except (CorruptionError, ValueError) as exc:
        raise ActionError(f"the manifest inside {top} is damaged: {exc}", 1) from None
    cmp = _Comparer(VerifyReport(top), manifest, progress)
    for entry in cd.walk(strict=False):
        if entry.path == MANIFEST_NAME:
            continue
        if entry.kind == "file":
            try:
                cmp.file(entry.path, entry.size, functools.partial(cd.open, entry.path))
            except CorruptionError as exc:
                block = getattr(exc, "block", None)
                where = f" (block {block}, bytes {block * 4096}–{block * 4096 + 4095})" if block is not None else ""
                cmp.report.bad.append((entry.path, f"does not decrypt: {exc.reason}{where}"))
        elif entry.kind == "symlink":
            try:
                cmp.symlink(entry.path, cd.read_link(entry.path))
            except CorruptionError as exc:
                cmp.report.bad.append((entry.path, f"symlink does not decrypt: {exc.reason}"))
    for err in cd.skipped:
        cmp.report.bad.append((err.path, f"stored entry does not decrypt: {err.reason}"))
    return cmp.finish()
