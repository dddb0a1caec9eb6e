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

The package, one module a part: :mod:`.options` (limits, :class:`UploadOptions`), :mod:`.tree` (the local tree scan,
CRC-64), :mod:`.journal`, :mod:`.objects` (the objects and the progress over them), :mod:`.manifest`, :mod:`.report`,
the run in :mod:`.run_base` (shared state), :mod:`.run_plan` (encryption set-up and planning), :mod:`.run` (running),
:mod:`.run_large` (large objects), :mod:`.run_verify` (verification), and :mod:`.upload` (the entry point).
"""

from __future__ import annotations

from .journal import Journal, JournalState, run_id, state_root
from .options import (
    DEFAULT_PART_SIZE,
    DEFAULT_THREADS,
    JOURNAL_NAME,
    JOURNAL_VERSION,
    LOCK_NAME,
    MANIFEST_NAME,
    MARKER_NAME,
    MAX_PARTS,
    MAX_THREADS,
    MIN_PART_SIZE,
    SOURCE,
    MiB,
    UploadInputError,
    UploadOptions,
)
from .report import Mismatch, UploadReport
from .tree import LocalFile, LocalTree, crc64_of, crc64_of_file, scan_tree
from .upload import upload_tree

__all__ = [
    "DEFAULT_PART_SIZE",
    "DEFAULT_THREADS",
    "JOURNAL_NAME",
    "JOURNAL_VERSION",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "MARKER_NAME",
    "MAX_PARTS",
    "MAX_THREADS",
    "MIN_PART_SIZE",
    "SOURCE",
    "Journal",
    "JournalState",
    "LocalFile",
    "LocalTree",
    "MiB",
    "Mismatch",
    "UploadInputError",
    "UploadOptions",
    "UploadReport",
    "crc64_of",
    "crc64_of_file",
    "run_id",
    "scan_tree",
    "state_root",
    "upload_tree",
]
