"""CAI-1.7: upload a model directory to OSS — parallel, resumable, verified, optionally encrypted on the way.

``upload_tree(bucket, DIR, PREFIX)`` puts every regular file under ``DIR`` at ``PREFIX + relative path``:

* files of at least ``part_size`` bytes go up as multipart uploads with ``threads`` parts in parallel
  (:func:`oss2.resumable_upload`, its checkpoint in an :class:`oss2.ResumableStore` under the run's state directory),
  smaller ones as single PUTs, ``threads`` files at a time;
* every finished object's CRC-64/ECMA (computed here while the data is read) is compared with the one OSS returns,
  and the file is then recorded in the run's journal (``<state dir>/uploads/<hash>/journal.jsonl``, one JSON line per
  event, appended and flushed, so a killed run loses nothing it had finished); a re-run skips journalled files whose
  size and mtime are unchanged and resumes an interrupted multipart upload from its checkpoint;
* afterwards every object is checked with a HEAD: size and ``x-oss-hash-crc64ecma`` must equal the local values.
  Missing or mismatched objects are named (and dropped from the journal, so the next run uploads them again).

**Nothing half-done looks done.** The first object written is the marker ``PREFIX.cai-upload-incomplete``
(:data:`MARKER_NAME`, a small JSON note); it is deleted only after the verification passed. Anything that lists the
prefix (the ``oss.model_prefix`` check, ``ossutil ls``, a person) can tell an unfinished upload by it. A top-level
``gocryptfs.conf`` (encrypting on the way, or uploading a cipherdir) is also uploaded last, so the prefix is not a
cipherdir until every other object is there.

**Encrypt and upload** (``password=…``): the plaintext is encrypted with the native gocryptfs engine
(:mod:`cai_tui.gocryptfs`) straight into the request bodies — small files whole in memory, large ones one part at a
time — so no ciphertext copy of the model is ever written to disk. What lands in OSS is exactly a cipherdir that the
real ``gocryptfs`` mounts: ``gocryptfs.conf`` (default format), a ``gocryptfs.diriv`` per directory, encrypted names
(``gocryptfs.longname.*`` with their ``.name`` files for long ones). Random per-directory IVs and the config are
journalled before anything is uploaded, so a resumed run encrypts the rest with the same key and names; a resumed
large file keeps its file ID, and its missing parts are encrypted again (each gocryptfs block is independent).

**Progress and cancellation**: ``on_event`` receives ``progress`` events (source ``upload``, bytes done of the total,
``text`` the current file, ``data`` ``files_done``/``files_total``) at most every 0.1 s, and a note when the
verification starts. ``cancel`` is checked before each file and each part: once set, no new request starts, the
requests in flight end and are journalled, and :class:`~cai_tui.events.Cancelled` is raised; the marker stays, the
multipart uploads stay open with their parts, and the same call resumes from there.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import stat
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..events import NEVER, Cancelled, CancelToken, EventSink, note, progress
from .oss_client import OssActionError, is_oss_error, map_oss_error, oss_errors

MiB = 1024 * 1024
MARKER_NAME = ".cai-upload-incomplete"
"""Object written first under the prefix and deleted after verification: an upload in progress or unfinished."""
MIN_PART_SIZE = 10 * MiB
DEFAULT_PART_SIZE = 10 * MiB
DEFAULT_THREADS = 4
MAX_THREADS = 64
MAX_PARTS = 10_000
JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = ".lock"
JOURNAL_VERSION = 1
MANIFEST_NAME = ".cai-manifest.json"

SOURCE = "upload"


class UploadInputError(ValueError):
    """Bad input (the directory, the options, the password): nothing was uploaded. Exit code 2."""


# ------------------------------------------------------------------------------------------------ local tree
@dataclass(frozen=True)
class LocalFile:
    rel: str  # "/"-separated, relative to the source directory
    path: str
    size: int
    mtime_ns: int


@dataclass
class LocalTree:
    root: str
    files: list[LocalFile]
    dirs: list[str]  # every directory, "" for the root, parents before children

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


def scan_tree(src_dir: str | os.PathLike[str]) -> LocalTree:
    """Every regular file (symlinks to files are followed) and directory under ``src_dir``, sorted."""
    root = os.path.abspath(os.fspath(src_dir))
    if not os.path.exists(root):
        raise UploadInputError(f"{root} does not exist")
    if not os.path.isdir(root):
        raise UploadInputError(f"{root} is not a directory; give the model directory")
    files: list[LocalFile] = []
    dirs: list[str] = [""]
    problems: list[str] = []

    def walk(path: str, rel: str) -> None:
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except OSError as exc:
            problems.append(f"{path}: cannot read the directory ({exc.strerror})")
            return
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError:
                problems.append(f"{entry.path}: dangling symlink or unreadable entry")
                continue
            if stat.S_ISDIR(st.st_mode):
                if entry.is_symlink():
                    problems.append(f"{entry.path}: a symlink to a directory (not followed; copy the directory in)")
                    continue
                dirs.append(child)
                walk(entry.path, child)
            elif stat.S_ISREG(st.st_mode):
                if not os.access(entry.path, os.R_OK):
                    problems.append(f"{entry.path}: not readable")
                    continue
                files.append(LocalFile(child, entry.path, st.st_size, st.st_mtime_ns))
            else:
                problems.append(f"{entry.path}: not a regular file (device, socket or FIFO)")

    walk(root, "")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise UploadInputError(f"cannot upload {root}: {shown}")
    if not files:
        raise UploadInputError(f"{root} holds no files to upload")
    return LocalTree(root, files, dirs)


def crc64_of_file(path: str, chunk: int = 4 * MiB) -> tuple[int, int]:
    """(CRC-64/ECMA as OSS computes it, bytes read), streaming."""
    from oss2.utils import Crc64

    crc = Crc64()
    n = 0
    with open(path, "rb") as f:
        while True:
            data = f.read(chunk)
            if not data:
                break
            crc.update(data)
            n += len(data)
    return int(crc.crc), n


def crc64_of(data: bytes) -> int:
    from oss2.utils import Crc64

    crc = Crc64()
    crc.update(data)
    return int(crc.crc)


# ------------------------------------------------------------------------------------------------ journal
def state_root() -> Path:
    from .. import paths

    return paths.state_dir() / "uploads"


def run_id(bucket: str, prefix: str, src_dir: str) -> str:
    text = f"{bucket}\n{prefix}\n{os.path.realpath(src_dir)}"
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:24]


@dataclass
class JournalState:
    conf: str | None = None
    dirivs: dict[str, bytes] = field(default_factory=dict)
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {size, crc, src_size, src_mtime_ns}
    mpu: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {upload_id, file_id, blocks, src_*}
    parts: dict[tuple[str, str], dict[int, tuple[str, int, int]]] = field(default_factory=dict)
    runs: int = 0


class Journal:
    """Append-only JSON lines; the first is the header naming the upload. A torn last line is ignored."""

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._lock = threading.Lock()
        self.state = JournalState()
        self._fh: Any = None

    def open(self) -> JournalState:
        lines = self._read()
        if lines and {k: lines[0].get(k) for k in self.header} == self.header:
            for rec in lines[1:]:
                self._apply(rec)
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        else:  # new, or another kind of upload to the same place: start over
            self._fh = open(self.path, "w", encoding="utf-8")  # noqa: SIM115
            self._write(self.header)
        os.chmod(self.path, 0o600)
        return self.state

    def _read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text("utf-8")
        except FileNotFoundError:
            return []
        out = []
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                break  # a torn write (the run was killed): everything before it counts
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def _apply(self, rec: dict[str, Any]) -> None:
        st = self.state
        t = rec.get("t")
        key = rec.get("key", "")
        if t == "run":
            st.runs += 1
        elif t == "conf":
            st.conf = rec["text"]
        elif t == "diriv":
            st.dirivs[rec["dir"]] = bytes.fromhex(rec["iv"])
        elif t == "done":
            st.done[key] = {k: rec.get(k) for k in ("size", "crc", "src_size", "src_mtime_ns")}
        elif t == "undone":
            st.done.pop(key, None)
        elif t == "mpu":
            st.mpu[key] = {k: rec.get(k) for k in ("upload_id", "file_id", "blocks", "src_size", "src_mtime_ns")}
        elif t == "part":
            st.parts.setdefault((key, rec["upload_id"]), {})[int(rec["n"])] = (
                rec["etag"],
                int(rec["size"]),
                int(rec["crc"]),
            )

    def _write(self, rec: dict[str, Any]) -> None:
        self._fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        self._fh.flush()

    def append(self, rec: dict[str, Any]) -> None:
        with self._lock:
            if self._fh is None:  # a request that ended after its run had stopped: nothing to record any more
                return
            self._write(rec)
            self._apply(rec)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


# ------------------------------------------------------------------------------------------------ objects
@dataclass
class _Obj:
    key: str
    size: int  # object size
    label: str  # what the progress line shows
    src: LocalFile | None = None  # the (plaintext) file
    data: bytes | None = None  # small metadata objects (gocryptfs.diriv, .name, gocryptfs.conf)
    encrypted: bool = False

    @property
    def counts_as_file(self) -> bool:
        return self.src is not None


@dataclass
class Mismatch:
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


@dataclass
class UploadReport:
    bucket: str
    prefix: str
    source: str
    encrypted: bool
    files: int
    objects: int
    bytes_total: int
    bytes_uploaded: int = 0
    skipped: int = 0  # objects already uploaded by an earlier run
    resumed: bool = False  # an earlier run of this upload existed
    seconds: float = 0.0
    problems: list[Mismatch] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)  # objects under the prefix that are not part of this upload
    state_dir: Path | None = None
    marker_key: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class UploadOptions:
    threads: int = DEFAULT_THREADS
    part_size: int = DEFAULT_PART_SIZE
    password: str | bytes | None = None  # set: encrypt with gocryptfs on the way
    scrypt_logn: int = 16  # gocryptfs default; lower only in tests
    state_root: Path | None = None
    verify: bool = True
    progress_interval: float = 0.1  # seconds between progress events (0: every update)

    def check(self) -> None:
        if not 1 <= self.threads <= MAX_THREADS:
            raise UploadInputError(f"--threads must be between 1 and {MAX_THREADS}, not {self.threads}")
        if self.part_size < MIN_PART_SIZE:
            raise UploadInputError(f"the part size must be at least {MIN_PART_SIZE // MiB} MiB")
        if self.password is not None and not self.password:
            raise UploadInputError("the gocryptfs password is empty")


class _Progress:
    """Thread-safe byte/file counters; a ``progress`` event to ``fn`` at most every ``interval`` seconds (and always
    for the last update)."""

    def __init__(self, fn: EventSink | None, bytes_total: int, files_total: int, interval: float = 0.1) -> None:
        self.fn = fn
        self.interval = interval
        self.bytes_total = bytes_total
        self.files_total = files_total
        self._lock = threading.Lock()
        self._committed = 0
        self._inflight: dict[str, int] = {}
        self.files_done = 0
        self.uploaded = 0
        self._last = 0.0

    def advance(self, key: str, done_in_object: int, label: str) -> None:
        with self._lock:
            self._inflight[key] = done_in_object
        self._emit(label)

    def finish(self, obj: _Obj, uploaded: bool) -> None:
        with self._lock:
            self._inflight.pop(obj.key, None)
            self._committed += obj.size
            if uploaded:
                self.uploaded += obj.size
            if obj.counts_as_file:
                self.files_done += 1
        self._emit(obj.label)

    def _emit(self, label: str, force: bool = False) -> None:
        if self.fn is None:
            return
        now = time.monotonic()
        with self._lock:
            done = self._committed + sum(self._inflight.values())
            last = self.files_done == self.files_total and done >= self.bytes_total
            if not (force or last or now - self._last >= self.interval):
                return
            self._last = now
            files_done = self.files_done
        files = {"files_done": files_done, "files_total": self.files_total}
        self.fn(progress(min(done, self.bytes_total), self.bytes_total, source=SOURCE, text=label, data=files))

    def emit(self, label: str) -> None:
        self._emit(label, force=True)


class _ManifestHasher:
    """SHA-256 of every plaintext file, in a background thread, in the format of
    :mod:`cai_tui.actions.model_manifest` (``.cai-manifest.json``, stored encrypted in the cipherdir)."""

    def __init__(self, files: list[LocalFile]) -> None:
        self._files = files
        self._result: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._stop = CancelToken()
        self._thread = threading.Thread(target=self._run, name="cai-upload-manifest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """The upload stopped: no more hashing (the thread ends within one MiB)."""
        self._stop.cancel()

    def _run(self) -> None:
        try:
            self._result = self._build()
        except BaseException as exc:
            self._error = exc

    def _build(self) -> dict[str, Any]:
        import datetime

        from .. import __version__
        from .model_manifest import ALGORITHM, MANIFEST_VERSION

        files: dict[str, dict[str, Any]] = {}
        for f in self._files:
            h = hashlib.sha256()
            n = 0
            with open(f.path, "rb", buffering=0) as src:
                while chunk := src.read(MiB):
                    self._stop.check()
                    h.update(chunk)
                    n += len(chunk)
            if n != f.size:
                raise UploadInputError(f"{f.path} changed while it was uploaded (size); run the command again")
            files[f.rel] = {"size": n, "sha256": h.hexdigest()}
        return {
            "version": MANIFEST_VERSION,
            "algorithm": ALGORITHM,
            "created_by": f"cai-tui {__version__}",
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "file_count": len(files),
            "total_bytes": sum(v["size"] for v in files.values()),
            "files": files,
            "symlinks": {},
        }

    def result(self) -> bytes:
        from .model_manifest import manifest_bytes

        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return manifest_bytes(self._result)


# ------------------------------------------------------------------------------------------------ the upload
class _Run:
    def __init__(
        self,
        bucket: Any,
        tree: LocalTree,
        prefix: str,
        options: UploadOptions,
        on_event: EventSink | None,
        state_dir: Path,
        cancel: CancelToken = NEVER,
    ) -> None:
        self.bucket = bucket
        self.tree = tree
        self.prefix = prefix
        self.opt = options
        self.on_event = on_event
        self.user_cancel = cancel
        self.state_dir = state_dir
        self.encrypt = options.password is not None
        header = {
            "journal": JOURNAL_VERSION,
            "bucket": bucket.bucket_name,
            "prefix": prefix,
            "source": tree.root,
            "mode": "gocryptfs" if self.encrypt else "plain",
        }
        self.journal = Journal(state_dir / JOURNAL_NAME, header)
        self.marker_key = prefix + MARKER_NAME
        self.objects: list[_Obj] = []
        self.crcs: dict[str, int] = {}  # key -> local CRC-64 of what was (or is) uploaded
        self._names: Any = None
        self._content: Any = None
        self._conf_text = ""
        self._manifest_key = ""
        self._hasher: _ManifestHasher | None = None
        self._cancel = threading.Event()

    # -------------------------------------------------------------- encryption set-up and planning
    def _crypto(self, state: JournalState) -> None:
        from ..gocryptfs import GocryptfsConfig, NameCipher, WrongPassword, create_config
        from ..gocryptfs.content import ContentCipher

        assert self.opt.password is not None
        if state.conf is not None:
            config = GocryptfsConfig.from_json(state.conf)
            try:
                master_key = config.decrypt_master_key(self.opt.password)
            except WrongPassword:
                raise UploadInputError(
                    "the password does not open the gocryptfs config of the interrupted upload being resumed; give "
                    f"the same password as before, or start over by removing {self.state_dir}"
                ) from None
        else:
            config, master_key = create_config(self.opt.password, scrypt_logn=self.opt.scrypt_logn)
            self.journal.append({"t": "conf", "text": config.to_json()})
        keys = config.keys(master_key)
        self._names = NameCipher(keys.names, raw64=config.raw64, long_name_max=config.effective_long_name_max)
        self._content = ContentCipher(keys.content)
        self._conf_text = config.to_json()
        for d in self.tree.dirs:
            if d not in state.dirivs:
                iv = _new_iv()
                self.journal.append({"t": "diriv", "dir": d, "iv": iv.hex()})

    def _plan(self) -> None:
        if not self.encrypt:
            for f in self.tree.files:
                try:
                    f.rel.encode("utf-8")
                except UnicodeEncodeError:
                    raise UploadInputError(
                        f"{f.path}: the file name is not UTF-8, which OSS object names must be; rename it"
                    ) from None
                self.objects.append(_Obj(self.prefix + f.rel, f.size, f.rel, src=f))
            return
        from ..gocryptfs import cipher_size
        from ..gocryptfs.names import CONF_NAME, DIRIV_NAME, LONGNAME_SUFFIX

        self.tree.files = [f for f in self.tree.files if f.rel != MANIFEST_NAME]  # a fresh one is written
        ivs = self.journal.state.dirivs
        cdir: dict[str, str] = {"": ""}  # plaintext dir -> cipher path ("" or ending in "/")
        meta: list[_Obj] = []

        def place(rel: str) -> str:
            parent, _, name = rel.rpartition("/")
            disk, long_name = self._names.disk_name(os.fsencode(name), ivs[parent])
            path = cdir[parent] + disk
            if long_name is not None:
                meta.append(
                    _Obj(self.prefix + path + LONGNAME_SUFFIX, len(long_name), rel + " (name)", data=long_name.encode())
                )
            return path

        for d in self.tree.dirs:
            if d:
                cdir[d] = place(d) + "/"
            meta.append(_Obj(self.prefix + cdir[d] + DIRIV_NAME, len(ivs[d]), (d or ".") + " (diriv)", data=ivs[d]))
        files = [
            _Obj(self.prefix + place(f.rel), cipher_size(f.size), f.rel, src=f, encrypted=True) for f in self.tree.files
        ]
        self._manifest_key = self.prefix + place(MANIFEST_NAME)
        conf = self._conf_text.encode("utf-8")
        self.objects = meta + files + [_Obj(self.prefix + CONF_NAME, len(conf), CONF_NAME, data=conf)]

    # -------------------------------------------------------------- running
    def run(self) -> UploadReport:
        t0 = time.monotonic()
        state = self.journal.open()
        resumed = state.runs > 0
        self.journal.append({"t": "run", "at": time.time(), "pid": os.getpid()})
        if self.encrypt:
            if not state.done and not state.mpu:
                self._refuse_non_empty_prefix()
            self._crypto(state)
        self._plan()
        files_total = sum(1 for o in self.objects if o.counts_as_file)
        report = UploadReport(
            bucket=self.bucket.bucket_name,
            prefix=self.prefix,
            source=self.tree.root,
            encrypted=self.encrypt,
            files=files_total,
            objects=len(self.objects),
            bytes_total=sum(o.size for o in self.objects),
            resumed=resumed,
            state_dir=self.state_dir,
            marker_key=self.marker_key,
        )
        progress = _Progress(self.on_event, report.bytes_total, files_total, self.opt.progress_interval)
        todo = []
        for obj in self.objects:
            if self._already_done(obj):
                self.crcs[obj.key] = int(state.done[obj.key]["crc"])
                report.skipped += 1
                progress.finish(obj, uploaded=False)
            else:
                todo.append(obj)
        progress.emit("")
        self._put_marker(report)
        try:
            conf = [o for o in todo if o.key == self.prefix + "gocryptfs.conf"]  # a cipherdir only when complete
            rest = [o for o in todo if o not in conf]
            small = [o for o in rest if o.size < self.opt.part_size]
            big = [o for o in rest if o.size >= self.opt.part_size]
            if self.encrypt:
                self._hasher = _ManifestHasher(self.tree.files)
            self._parallel(small, progress)
            for obj in big:
                self.user_cancel.check()
                self._upload_big(obj, progress)
            if self._hasher is not None:
                self.user_cancel.check()
                self._upload_manifest(progress)
            self.user_cancel.check()
            self._parallel(conf, progress)  # last: the prefix becomes a cipherdir only when all else is there
        except BaseException as exc:
            self._cancel.set()
            if self._hasher is not None:
                self._hasher.stop()
            if isinstance(exc, Exception) and is_oss_error(exc):
                err = exc if isinstance(exc, OssActionError) else map_oss_error(exc, "uploading", self.bucket.endpoint)
                raise OssActionError(
                    f"{err.message}\nThe upload stopped: {progress.files_done} of {files_total} file(s) are in OSS; "
                    f"the marker {self.marker_key} stays until a run completes. Fix the cause and run the same "
                    "command again: it resumes where this one stopped.",
                    err.faq_id,
                    err.code,
                ) from None
            raise
        report.bytes_uploaded = progress.uploaded
        report.objects = len(self.objects)
        report.bytes_total = progress.bytes_total
        if self.opt.verify:
            if self.on_event is not None:
                self.on_event(note(f"verifying {len(self.objects)} object(s) (size and CRC-64)", source=SOURCE))
            report.problems = self._verify(progress)
            report.extras = self._extras()
            progress.emit("verified" if report.ok else "verification failed")
            if report.ok:
                with oss_errors(f"deleting the marker {self.marker_key}", self.bucket):
                    self.bucket.delete_object(self.marker_key)
        self.journal.append({"t": "end", "ok": report.ok, "at": time.time()})
        report.seconds = time.monotonic() - t0
        return report

    def _upload_manifest(self, progress: _Progress) -> None:
        """``.cai-manifest.json`` (SHA-256 of every plaintext file), encrypted, before ``gocryptfs.conf``."""
        import io

        from ..gocryptfs.content import encrypt_stream

        assert self._hasher is not None
        plain = self._hasher.result()
        out = io.BytesIO()
        encrypt_stream(io.BytesIO(plain), out, self._content)
        obj = _Obj(self._manifest_key, out.tell(), MANIFEST_NAME, data=out.getvalue())
        self.objects.insert(len(self.objects) - 1, obj)  # before gocryptfs.conf
        progress.bytes_total += obj.size
        self._upload_small(obj, progress)

    def _already_done(self, obj: _Obj) -> bool:
        rec = self.journal.state.done.get(obj.key)
        if rec is None or rec.get("size") != obj.size:
            return False
        if obj.src is not None:
            return bool(rec.get("src_size") == obj.src.size and rec.get("src_mtime_ns") == obj.src.mtime_ns)
        assert obj.data is not None
        return bool(rec.get("crc") == crc64_of(obj.data))

    def _refuse_non_empty_prefix(self) -> None:
        with oss_errors(f"listing oss://{self.bucket.bucket_name}/{self.prefix}", self.bucket):
            res = self.bucket.list_objects(prefix=self.prefix, max_keys=10)
        keys = [o.key for o in res.object_list if o.key != self.marker_key]
        if keys:
            raise UploadInputError(
                f"oss://{self.bucket.bucket_name}/{self.prefix} already holds objects ({', '.join(keys[:3])}"
                f"{', …' if len(keys) > 3 or res.is_truncated else ''}); an encrypted upload needs an empty prefix, "
                "because a new gocryptfs key makes anything already there unreadable: choose another prefix or delete "
                f"them first (ossutil rm -r oss://{self.bucket.bucket_name}/{self.prefix})"
            )

    def _put_marker(self, report: UploadReport) -> None:
        note = {
            "tool": "cai-tui model upload",
            "state": "incomplete",
            "meaning": "an upload to this prefix started and has not been verified; do not use the objects yet",
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "objects": report.objects,
            "bytes": report.bytes_total,
            "encrypted": report.encrypted,
        }
        with oss_errors(f"writing the marker {self.marker_key}", self.bucket):
            self.bucket.put_object(
                self.marker_key, json.dumps(note, indent=2).encode(), headers={"Content-Type": "application/json"}
            )

    def _parallel(self, objs: list[_Obj], progress: _Progress) -> None:
        self._run_all([functools.partial(self._upload_small, o, progress) for o in objs], "cai-upload")

    def _run_all(self, calls: list[Callable[[], None]], name: str) -> None:
        """Run ``calls`` on ``threads`` threads; the first failure (or Ctrl-C) is raised at once, without waiting for
        requests still in flight (they end with their own timeout; queued calls are dropped)."""
        if not calls:
            return
        pool = ThreadPoolExecutor(max_workers=self.opt.threads, thread_name_prefix=name)
        try:
            futures = [pool.submit(call) for call in calls]
            wait(futures, return_when=FIRST_EXCEPTION)
            for fut in futures:
                if fut.done() and fut.exception() is not None:
                    raise fut.exception()  # type: ignore[misc]
        except Cancelled:
            # asked to stop: the requests in flight end and are journalled, so that a rerun resumes from a state
            # that matches what is in OSS; queued calls are dropped
            self._cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        except BaseException:
            self._cancel.set()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def _record_done(self, obj: _Obj, crc: int, server_crc: int | None) -> None:
        if server_crc is not None and server_crc != crc:
            raise OssActionError(
                f"uploading {obj.label}: OSS computed CRC-64 {server_crc} but the data sent has {crc}: the data "
                "changed on the way or the file changed while it was read; run the command again",
                "oss-crc-mismatch",
                "InconsistentError",
            )
        self.crcs[obj.key] = crc
        rec: dict[str, Any] = {"t": "done", "key": obj.key, "size": obj.size, "crc": crc}
        if obj.src is not None:
            rec.update(src_size=obj.src.size, src_mtime_ns=obj.src.mtime_ns)
        self.journal.append(rec)

    def _upload_small(self, obj: _Obj, progress: _Progress) -> None:
        if self._cancel.is_set():
            return
        self.user_cancel.check()
        data = self._small_body(obj)
        crc = crc64_of(data)

        def cb(consumed: int, _total: int | None) -> None:
            progress.advance(obj.key, consumed, obj.label)

        with oss_errors(f"uploading {obj.label}", self.bucket):
            result = self.bucket.put_object(obj.key, data, progress_callback=cb)
        self._record_done(obj, crc, result.crc)
        progress.finish(obj, uploaded=True)

    def _small_body(self, obj: _Obj) -> bytes:
        if obj.data is not None:
            return obj.data
        assert obj.src is not None
        src = obj.src
        with open(src.path, "rb") as f:
            if not obj.encrypted:
                data = f.read()
            else:
                import io

                from ..gocryptfs.content import encrypt_stream

                out = io.BytesIO()
                encrypt_stream(f, out, self._content)
                data = out.getvalue()
        if len(data) != obj.size:
            raise UploadInputError(f"{src.path} changed while it was uploaded (size); run the command again")
        return data

    # -------------------------------------------------------------- large objects
    def _upload_big(self, obj: _Obj, progress: _Progress) -> None:
        if obj.encrypted:
            self._upload_big_encrypted(obj, progress)
        else:
            self._upload_big_plain(obj, progress)

    def _upload_big_plain(self, obj: _Obj, progress: _Progress) -> None:
        import oss2

        assert obj.src is not None
        src = obj.src
        store = oss2.ResumableStore(root=str(self.state_dir), dir="oss2")
        crc_box: dict[str, Any] = {}

        def local_crc() -> None:
            try:
                crc_box["crc"], crc_box["n"] = crc64_of_file(src.path)
            except OSError as exc:
                crc_box["error"] = exc

        crc_thread = threading.Thread(target=local_crc, name="cai-upload-crc", daemon=True)
        crc_thread.start()

        def cb(consumed: int, _total: int | None) -> None:
            # oss2 calls this before each part (and at the end): raising here stops each of its threads before its
            # next part, after the part it was sending; the checkpoint and the open upload let a rerun resume
            self.user_cancel.check()
            progress.advance(obj.key, consumed, obj.label)

        with oss_errors(f"uploading {obj.label}", self.bucket):
            result = oss2.resumable_upload(
                self.bucket,
                obj.key,
                src.path,
                store=store,
                multipart_threshold=self.opt.part_size,
                part_size=self.opt.part_size,
                num_threads=self.opt.threads,
                progress_callback=cb,
            )
        crc_thread.join()
        if "error" in crc_box:
            raise UploadInputError(f"{src.path}: cannot read ({crc_box['error']})")
        if crc_box["n"] != src.size or _mtime_ns(src.path) != src.mtime_ns:
            raise UploadInputError(f"{src.path} changed while it was uploaded; run the command again")
        self._record_done(obj, crc_box["crc"], result.crc)
        progress.finish(obj, uploaded=True)

    def _upload_big_encrypted(self, obj: _Obj, progress: _Progress) -> None:
        from oss2.models import PartInfo
        from oss2.utils import Crc64

        from ..gocryptfs.content import BLOCK_SIZE, CIPHER_BLOCK_SIZE, block_count, new_file_id

        assert obj.src is not None
        src = obj.src
        total_blocks = block_count(src.size)
        state = self.journal.state
        rec = state.mpu.get(obj.key)
        upload_id = ""
        have: dict[int, tuple[str, int, int]] = {}
        if rec is not None and (rec.get("src_size") != src.size or rec.get("src_mtime_ns") != src.mtime_ns):
            self._abort_quietly(obj.key, str(rec["upload_id"]))  # the file changed: its old parts are of no use
        elif rec is not None:
            listed = self._list_parts(obj.key, str(rec["upload_id"]))
            if listed is not None:
                upload_id = str(rec["upload_id"])
                file_id = bytes.fromhex(rec["file_id"])
                blocks = int(rec["blocks"])
                mine = state.parts.get((obj.key, upload_id), {})
                have = {n: v for n, v in mine.items() if listed.get(n) == (v[0], v[1])}
        if not upload_id:
            file_id = new_file_id()
            blocks = max(-(-self.opt.part_size // CIPHER_BLOCK_SIZE), -(-total_blocks // MAX_PARTS))
            with oss_errors(f"starting the multipart upload of {obj.label}", self.bucket):
                upload_id = self.bucket.init_multipart_upload(obj.key).upload_id
            self.journal.append(
                {
                    "t": "mpu",
                    "key": obj.key,
                    "upload_id": upload_id,
                    "file_id": file_id.hex(),
                    "blocks": blocks,
                    "src_size": src.size,
                    "src_mtime_ns": src.mtime_ns,
                }
            )
        parts = [
            (i + 1, first, min(first + blocks, total_blocks)) for i, first in enumerate(range(0, total_blocks, blocks))
        ]
        done_bytes = sum(v[1] for v in have.values())
        lock = threading.Lock()
        progress.advance(obj.key, done_bytes, obj.label)

        def one(n: int, first: int, end: int) -> None:
            nonlocal done_bytes
            if self._cancel.is_set():
                return
            self.user_cancel.check()
            fd = os.open(src.path, os.O_RDONLY)  # one per part: nothing shared with threads left running on failure
            try:
                body = _encrypt_blocks(fd, self._content, file_id, first, end, src.size, BLOCK_SIZE)
            finally:
                os.close(fd)
            crc = crc64_of(body)
            with oss_errors(f"uploading part {n} of {obj.label}", self.bucket):
                result = self.bucket.upload_part(obj.key, upload_id, n, body)
            if result.crc is not None and result.crc != crc:
                raise OssActionError(
                    f"uploading part {n} of {obj.label}: OSS computed CRC-64 {result.crc}, the data sent has {crc}",
                    "oss-crc-mismatch",
                    "InconsistentError",
                )
            self.journal.append(
                {
                    "t": "part",
                    "key": obj.key,
                    "upload_id": upload_id,
                    "n": n,
                    "etag": result.etag,
                    "size": len(body),
                    "crc": crc,
                }
            )
            with lock:
                have[n] = (result.etag, len(body), crc)
                done_bytes += len(body)
                now = done_bytes
            progress.advance(obj.key, now, obj.label)

        todo = [p for p in parts if p[0] not in have]
        self._run_all([functools.partial(one, *p) for p in todo], "cai-upload-part")
        if _mtime_ns(src.path) != src.mtime_ns:
            raise UploadInputError(f"{src.path} changed while it was uploaded; run the command again")
        crc_all = Crc64()
        crc = 0
        for n, _first, _end in parts:
            _etag, size, part_crc = have[n]
            crc = crc_all.combine(crc, part_crc, size) if n > 1 else part_crc
        with oss_errors(f"completing the multipart upload of {obj.label}", self.bucket):
            result = self.bucket.complete_multipart_upload(
                obj.key, upload_id, [PartInfo(n, have[n][0]) for n, _, _ in parts]
            )
        self._record_done(obj, int(crc), result.crc)
        progress.finish(obj, uploaded=True)

    def _abort_quietly(self, key: str, upload_id: str) -> None:
        """Drop an unfinished multipart upload (its parts cost storage until aborted); failures are not fatal."""
        import oss2

        try:
            self.bucket.abort_multipart_upload(key, upload_id)
        except oss2.exceptions.OssError:
            pass

    def _list_parts(self, key: str, upload_id: str) -> dict[int, tuple[str, int]] | None:
        """{part number: (etag, size)} of an open multipart upload; None when it no longer exists."""
        import oss2

        out: dict[int, tuple[str, int]] = {}
        with oss_errors(f"listing the parts of {key}", self.bucket):
            try:
                for p in oss2.PartIterator(self.bucket, key, upload_id):
                    out[int(p.part_number)] = (str(p.etag), int(p.size))
            except oss2.exceptions.NoSuchUpload:
                return None
        return out

    # -------------------------------------------------------------- verification
    def _verify(self, progress: _Progress) -> list[Mismatch]:
        import oss2

        progress.emit("verifying")

        def head(obj: _Obj) -> Mismatch | None:
            try:
                meta = self.bucket.head_object(obj.key)
            except oss2.exceptions.NotFound:
                return Mismatch(obj.key, "missing")
            want = self.crcs.get(obj.key)
            if meta.content_length != obj.size:
                return Mismatch(obj.key, f"size {meta.content_length}, expected {obj.size}")
            if meta.server_crc is None:
                return Mismatch(obj.key, "OSS sent no x-oss-hash-crc64ecma; cannot verify the content")
            if want is not None and int(meta.server_crc) != want:
                return Mismatch(obj.key, f"CRC-64 {meta.server_crc}, expected {want}")
            return None

        with (
            oss_errors(f"verifying oss://{self.bucket.bucket_name}/{self.prefix}", self.bucket),
            ThreadPoolExecutor(max_workers=self.opt.threads, thread_name_prefix="cai-verify") as pool,
        ):
            results = list(pool.map(head, self.objects))
        problems = [m for m in results if m is not None]
        for m in problems:
            self.journal.append({"t": "undone", "key": m.key})
        return problems

    def _extras(self) -> list[str]:
        import oss2

        wanted = {o.key for o in self.objects} | {self.marker_key}
        extras = []
        with oss_errors(f"listing oss://{self.bucket.bucket_name}/{self.prefix}", self.bucket):
            for info in oss2.ObjectIterator(self.bucket, prefix=self.prefix):
                if info.key not in wanted:
                    extras.append(str(info.key))
        return extras


def _new_iv() -> bytes:
    while True:
        iv = os.urandom(16)
        if any(iv):
            return iv


def _mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _encrypt_blocks(fd: int, content: Any, file_id: bytes, first: int, end: int, size: int, block_size: int) -> bytes:
    """gocryptfs ciphertext of plaintext blocks ``[first, end)`` (with the file header when ``first == 0``)."""
    from ..gocryptfs.content import CIPHER_BLOCK_SIZE, IO_BLOCKS, block_count, make_header

    want_total = max(0, min(end * block_size, size) - first * block_size)
    out = bytearray(make_header(file_id) if first == 0 else b"")
    cbuf = bytearray(IO_BLOCKS * CIPHER_BLOCK_SIZE)
    block = first
    got = 0
    while block < end:
        want = min(IO_BLOCKS, end - block) * block_size
        data = os.pread(fd, want, block * block_size)
        while 0 < len(data) < want:  # short reads are allowed; fill up or reach EOF
            more = os.pread(fd, want - len(data), block * block_size + len(data))
            if not more:
                break
            data += more
        if not data:
            break
        out += content.encrypt_chunk(memoryview(data), block, file_id, cbuf)
        got += len(data)
        block += block_count(len(data))
        if len(data) < want:
            break
    if got != want_total:
        raise UploadInputError("a file changed size while it was encrypted and uploaded; run the command again")
    return bytes(out)


# ------------------------------------------------------------------------------------------------ entry point
def upload_tree(
    bucket: Any,
    src_dir: str | os.PathLike[str],
    prefix: str,
    *,
    options: UploadOptions | None = None,
    on_event: EventSink | None = None,
    cancel: CancelToken = NEVER,
) -> UploadReport:
    """Upload (and verify) ``src_dir`` to ``prefix`` of ``bucket`` (an :class:`oss2.Bucket`); see the module docstring.

    Raises :class:`UploadInputError` (nothing or nothing more uploaded; fix the input) and
    :class:`~cai_tui.actions.oss_client.OssActionError` (OSS refused or was unreachable; re-run to resume) and
    :class:`~cai_tui.events.Cancelled` (``cancel`` was set; re-run to resume). A report with problems means
    verification failed.
    """
    opt = options or UploadOptions()
    opt.check()
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    tree = scan_tree(src_dir)
    if opt.password is None:
        _refuse_unfinished_cipherdir(tree)
    root = opt.state_root or state_root()
    state_dir = root / run_id(bucket.bucket_name, prefix, tree.root)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _exclusive(state_dir, bucket.bucket_name, prefix):
        run = _Run(bucket, tree, prefix, opt, on_event, state_dir, cancel)
        try:
            return run.run()
        finally:
            run.journal.close()


def _refuse_unfinished_cipherdir(tree: LocalTree) -> None:
    """An interrupted ``cai-tui model encrypt`` output (its marker, or directory IVs without gocryptfs.conf) is not a
    model: uploading it would put an unusable cipherdir in OSS."""
    top = {f.rel for f in tree.files if "/" not in f.rel}
    if "CAI-INCOMPLETE" in top:
        raise UploadInputError(
            f"{tree.root} is an unfinished encryption (CAI-INCOMPLETE marker): delete it and run "
            "`cai-tui model encrypt` again, or upload the plaintext with --encrypt"
        )
    if "gocryptfs.diriv" in top and "gocryptfs.conf" not in top:
        raise UploadInputError(
            f"{tree.root} has gocryptfs.diriv but no gocryptfs.conf: an incomplete cipherdir (or a sub-folder of "
            "one); upload the whole cipher directory"
        )


@contextlib.contextmanager
def _exclusive(state_dir: Path, bucket: str, prefix: str) -> Any:
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UploadInputError(
                f"another upload of this directory to oss://{bucket}/{prefix} is running (state {state_dir}); "
                "wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)
