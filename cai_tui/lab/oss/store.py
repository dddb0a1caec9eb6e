"""Buckets, objects and multipart uploads on disk, under one root directory.

Layout (nothing else is ever created, and no name is ever derived from a bucket or object name as a path)::

    <root>/index.sqlite3      buckets, objects, uploads, parts
    <root>/blobs/<64 hex>     object and part contents: sha256(bucket NUL key NUL random nonce)
    <root>/tmp/<32 hex>.part  bodies being received; renamed into blobs/ once complete

Bodies are streamed: the MD5 and CRC-64/ECMA are computed while the chunks are written to a temporary file, which is
then renamed into place. A new version of an object gets a new blob, so a reader that opened the old one keeps reading
consistent bytes while the writer replaces the index row.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from oss2.utils import Crc64

CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


def crc64_combine(crc1: int, crc2: int, len2: int) -> int:
    return int(Crc64().combine(crc1, crc2, len2))


@dataclass(frozen=True)
class Blob:
    """A body received into ``tmp/`` and not yet committed."""

    tmp_name: str
    size: int
    md5: bytes
    crc64: int

    @property
    def etag(self) -> str:
        return self.md5.hex().upper()


@dataclass(frozen=True)
class BucketRecord:
    name: str
    owner_uid: str
    created: float
    policy: str | None
    acl: str = "private"


@dataclass(frozen=True)
class ObjectRecord:
    bucket: str
    key: str
    size: int
    etag: str  # without quotes, uppercase (multipart: "HEX-N")
    crc64: int
    mtime: float
    content_type: str
    object_type: str  # Normal | Multipart
    blob: str
    content_md5: str  # base64, '' for multipart objects
    headers: dict[str, str] = field(default_factory=dict)  # user meta and standard headers to echo


@dataclass(frozen=True)
class UploadRecord:
    upload_id: str
    bucket: str
    key: str
    initiated: float
    content_type: str
    headers: dict[str, str]


@dataclass(frozen=True)
class PartRecord:
    number: int
    size: int
    etag: str
    crc64: int
    mtime: float
    blob: str
    md5: bytes


class StoreError(Exception):
    """A state conflict the server turns into an OSS error (the name of the condition is the argument)."""


class Store:
    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.blobs = self.root / "blobs"
        self.tmp = self.root / "tmp"
        for d in (self.root, self.blobs, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(str(self.root / "index.sqlite3"), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS buckets(
                name TEXT PRIMARY KEY, owner_uid TEXT NOT NULL, created REAL NOT NULL, policy TEXT, acl TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS objects(
                bucket TEXT NOT NULL, key TEXT NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL, crc64 TEXT NOT NULL,
                mtime REAL NOT NULL, content_type TEXT NOT NULL, object_type TEXT NOT NULL, blob TEXT NOT NULL,
                content_md5 TEXT NOT NULL, headers TEXT NOT NULL, PRIMARY KEY(bucket, key));
            CREATE TABLE IF NOT EXISTS uploads(
                upload_id TEXT PRIMARY KEY, bucket TEXT NOT NULL, key TEXT NOT NULL, initiated REAL NOT NULL,
                content_type TEXT NOT NULL, headers TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS parts(
                upload_id TEXT NOT NULL, number INTEGER NOT NULL, size INTEGER NOT NULL, etag TEXT NOT NULL,
                crc64 TEXT NOT NULL, mtime REAL NOT NULL, blob TEXT NOT NULL, md5 BLOB NOT NULL,
                PRIMARY KEY(upload_id, number));
            """
        )
        self._collect_garbage()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # --- files --------------------------------------------------------------------------------------------------------

    def _blob_path(self, name: str) -> Path:
        # Names are generated here (64 hex chars); anything else is a bug, never a path to follow.
        if len(name) != 64 or not set(name) <= _HEX:
            raise ValueError("bad blob name")
        return self.blobs / name

    def _tmp_path(self, name: str) -> Path:
        if len(name) != 32 or not set(name) <= _HEX:
            raise ValueError("bad temp name")
        return self.tmp / f"{name}.part"

    @staticmethod
    def _new_blob_name(bucket: str, key: str) -> str:
        h = hashlib.sha256()
        h.update(bucket.encode("utf-8", "surrogatepass") + b"\0" + key.encode("utf-8", "surrogatepass") + b"\0")
        h.update(secrets.token_bytes(16))
        return h.hexdigest()

    def _unlink_blob(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            self._blob_path(name).unlink()

    def _collect_garbage(self) -> None:
        """Drop half-received bodies and blobs no index row refers to (left by a crash)."""
        for p in self.tmp.iterdir():
            with contextlib.suppress(OSError):
                p.unlink()
        with self._lock:
            used = {r[0] for r in self._db.execute("SELECT blob FROM objects UNION SELECT blob FROM parts")}
        for p in self.blobs.iterdir():
            if p.name not in used:
                with contextlib.suppress(OSError):
                    p.unlink()

    def receive(self, chunks: Iterable[bytes]) -> Blob:
        """Stream ``chunks`` into a temporary file, hashing as they pass; the caller commits or discards it."""
        name = secrets.token_hex(16)
        path = self._tmp_path(name)
        md5 = hashlib.md5()
        crc = Crc64()
        size = 0
        try:
            with open(path, "xb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    md5.update(chunk)
                    crc.update(chunk)
                    size += len(chunk)
        except BaseException:
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        return Blob(name, size, md5.digest(), int(crc.crc))

    def discard(self, blob: Blob) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._tmp_path(blob.tmp_name).unlink()

    def _commit_blob(self, blob: Blob, bucket: str, key: str) -> str:
        final = self._new_blob_name(bucket, key)
        os.replace(self._tmp_path(blob.tmp_name), self._blob_path(final))
        return final

    def open_blob(self, name: str) -> BinaryIO:
        return open(self._blob_path(name), "rb")

    # --- buckets ------------------------------------------------------------------------------------------------------

    def create_bucket(self, name: str, owner_uid: str) -> bool:
        """True when created, False when it already existed with this owner; StoreError when another owns it."""
        with self._lock:
            row = self._db.execute("SELECT owner_uid FROM buckets WHERE name=?", (name,)).fetchone()
            if row is not None:
                if row[0] != owner_uid:
                    raise StoreError("BucketAlreadyExists")
                return False
            self._db.execute(
                "INSERT INTO buckets(name, owner_uid, created, policy, acl) VALUES(?,?,?,?,?)",
                (name, owner_uid, time.time(), None, "private"),
            )
            return True

    def bucket(self, name: str) -> BucketRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT name, owner_uid, created, policy, acl FROM buckets WHERE name=?", (name,)
            ).fetchone()
        return BucketRecord(*row) if row else None

    def buckets(self, owner_uid: str | None = None) -> list[BucketRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, owner_uid, created, policy, acl FROM buckets ORDER BY name"
            ).fetchall()
        return [BucketRecord(*r) for r in rows if owner_uid is None or r[1] == owner_uid]

    def delete_bucket(self, name: str) -> None:
        with self._lock:
            if self._db.execute("SELECT 1 FROM objects WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise StoreError("BucketNotEmpty")
            if self._db.execute("SELECT 1 FROM uploads WHERE bucket=? LIMIT 1", (name,)).fetchone():
                raise StoreError("BucketNotEmpty")
            self._db.execute("DELETE FROM buckets WHERE name=?", (name,))

    def set_policy(self, name: str, policy: str | None) -> None:
        with self._lock:
            self._db.execute("UPDATE buckets SET policy=? WHERE name=?", (policy, name))

    # --- objects ------------------------------------------------------------------------------------------------------

    _OBJ_COLS = "bucket, key, size, etag, crc64, mtime, content_type, object_type, blob, content_md5, headers"

    @staticmethod
    def _obj(row: tuple) -> ObjectRecord:
        b, k, size, etag, crc, mtime, ctype, otype, blob, cmd5, headers = row
        return ObjectRecord(b, k, size, etag, int(crc), mtime, ctype, otype, blob, cmd5, json.loads(headers))

    def _put_row(self, rec: ObjectRecord) -> str | None:
        """Insert or replace; returns the blob of the version replaced. Caller holds the lock."""
        old = self._db.execute("SELECT blob FROM objects WHERE bucket=? AND key=?", (rec.bucket, rec.key)).fetchone()
        self._db.execute(
            f"INSERT OR REPLACE INTO objects({self._OBJ_COLS}) VALUES(?,?,?,?,?,?,?,?,?,?,?)",
            (
                rec.bucket,
                rec.key,
                rec.size,
                rec.etag,
                str(rec.crc64),
                rec.mtime,
                rec.content_type,
                rec.object_type,
                rec.blob,
                rec.content_md5,
                json.dumps(rec.headers),
            ),
        )
        return old[0] if old else None

    def exists(self, bucket: str, key: str) -> bool:
        with self._lock:
            return (
                self._db.execute("SELECT 1 FROM objects WHERE bucket=? AND key=?", (bucket, key)).fetchone() is not None
            )

    def put_object(
        self,
        bucket: str,
        key: str,
        blob: Blob,
        content_type: str,
        headers: dict[str, str],
        content_md5: str,
        forbid_overwrite: bool = False,
    ) -> ObjectRecord:
        with self._lock:
            if self._db.execute("SELECT 1 FROM buckets WHERE name=?", (bucket,)).fetchone() is None:
                raise StoreError("NoSuchBucket")
            if forbid_overwrite and self.exists(bucket, key):
                raise StoreError("FileAlreadyExists")
            name = self._commit_blob(blob, bucket, key)
            rec = ObjectRecord(
                bucket,
                key,
                blob.size,
                blob.etag,
                blob.crc64,
                time.time(),
                content_type,
                "Normal",
                name,
                content_md5,
                headers,
            )
            old = self._put_row(rec)
        if old:
            self._unlink_blob(old)
        return rec

    def get_object(self, bucket: str, key: str) -> ObjectRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket=? AND key=?", (bucket, key)
            ).fetchone()
        return self._obj(row) if row else None

    def open_object(self, bucket: str, key: str) -> tuple[ObjectRecord, BinaryIO] | None:
        """The record and an open file of the same version (consistent even if it is overwritten meanwhile)."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket=? AND key=?", (bucket, key)
            ).fetchone()
            if not row:
                return None
            rec = self._obj(row)
            return rec, self.open_blob(rec.blob)

    def delete_object(self, bucket: str, key: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT blob FROM objects WHERE bucket=? AND key=?", (bucket, key)).fetchone()
            if not row:
                return False
            self._db.execute("DELETE FROM objects WHERE bucket=? AND key=?", (bucket, key))
        self._unlink_blob(row[0])
        return True

    def iter_objects(self, bucket: str, after: str, prefix: str, batch: int = 500) -> Iterator[ObjectRecord]:
        """Objects whose key is > ``after`` and starts with ``prefix``, in byte order of their UTF-8 encoding."""
        lower = max(after, prefix)
        inclusive = prefix > after
        while True:
            op = ">=" if inclusive else ">"
            with self._lock:
                rows = self._db.execute(
                    f"SELECT {self._OBJ_COLS} FROM objects WHERE bucket=? AND key {op} ? ORDER BY key LIMIT ?",
                    (bucket, lower, batch),
                ).fetchall()
            if not rows:
                return
            for row in rows:
                rec = self._obj(row)
                if not rec.key.startswith(prefix):
                    return
                yield rec
            lower = rows[-1][1]
            inclusive = False

    # --- multipart ----------------------------------------------------------------------------------------------------

    def create_upload(self, bucket: str, key: str, content_type: str, headers: dict[str, str]) -> UploadRecord:
        upload_id = secrets.token_hex(16).upper()
        rec = UploadRecord(upload_id, bucket, key, time.time(), content_type, headers)
        with self._lock:
            self._db.execute(
                "INSERT INTO uploads(upload_id, bucket, key, initiated, content_type, headers) VALUES(?,?,?,?,?,?)",
                (upload_id, bucket, key, rec.initiated, content_type, json.dumps(headers)),
            )
        return rec

    def upload(self, upload_id: str) -> UploadRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT upload_id, bucket, key, initiated, content_type, headers FROM uploads WHERE upload_id=?",
                (upload_id,),
            ).fetchone()
        if not row:
            return None
        return UploadRecord(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))

    def uploads(self, bucket: str) -> list[UploadRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT upload_id, bucket, key, initiated, content_type, headers FROM uploads "
                "WHERE bucket=? ORDER BY key, initiated",
                (bucket,),
            ).fetchall()
        return [UploadRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def put_part(self, upload_id: str, number: int, blob: Blob) -> PartRecord:
        with self._lock:
            up = self._db.execute("SELECT bucket, key FROM uploads WHERE upload_id=?", (upload_id,)).fetchone()
            if up is None:
                raise StoreError("NoSuchUpload")
            name = self._commit_blob(blob, up[0], up[1])
            old = self._db.execute(
                "SELECT blob FROM parts WHERE upload_id=? AND number=?", (upload_id, number)
            ).fetchone()
            rec = PartRecord(number, blob.size, blob.etag, blob.crc64, time.time(), name, blob.md5)
            self._db.execute(
                "INSERT OR REPLACE INTO parts(upload_id, number, size, etag, crc64, mtime, blob, md5) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (upload_id, number, rec.size, rec.etag, str(rec.crc64), rec.mtime, name, rec.md5),
            )
        if old:
            self._unlink_blob(old[0])
        return rec

    def parts(self, upload_id: str) -> list[PartRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT number, size, etag, crc64, mtime, blob, md5 FROM parts WHERE upload_id=? ORDER BY number",
                (upload_id,),
            ).fetchall()
        return [PartRecord(r[0], r[1], r[2], int(r[3]), r[4], r[5], bytes(r[6])) for r in rows]

    def _drop_upload(self, upload_id: str) -> list[str]:
        """Delete an upload's rows; returns the part blobs to unlink. Caller holds the lock."""
        blobs = [r[0] for r in self._db.execute("SELECT blob FROM parts WHERE upload_id=?", (upload_id,))]
        self._db.execute("DELETE FROM parts WHERE upload_id=?", (upload_id,))
        self._db.execute("DELETE FROM uploads WHERE upload_id=?", (upload_id,))
        return blobs

    def abort_upload(self, upload_id: str) -> bool:
        with self._lock:
            if self._db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload_id,)).fetchone() is None:
                return False
            blobs = self._drop_upload(upload_id)
        for b in blobs:
            self._unlink_blob(b)
        return True

    def complete_upload(self, upload: UploadRecord, chosen: list[PartRecord]) -> ObjectRecord:
        """Concatenate ``chosen`` (validated by the caller) into the object, streaming; drop the upload."""
        name = secrets.token_hex(16)
        tmp = self._tmp_path(name)
        crc = 0
        size = 0
        digest = hashlib.md5()
        try:
            with open(tmp, "xb") as out:
                for p in chosen:
                    with self.open_blob(p.blob) as f:
                        while True:
                            data = f.read(CHUNK)
                            if not data:
                                break
                            out.write(data)
                    crc = crc64_combine(crc, p.crc64, p.size)
                    size += p.size
                    digest.update(p.md5)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        etag = f"{digest.hexdigest().upper()}-{len(chosen)}"
        with self._lock:
            if self._db.execute("SELECT 1 FROM uploads WHERE upload_id=?", (upload.upload_id,)).fetchone() is None:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise StoreError("NoSuchUpload")
            final = self._new_blob_name(upload.bucket, upload.key)
            os.replace(tmp, self._blob_path(final))
            rec = ObjectRecord(
                upload.bucket,
                upload.key,
                size,
                etag,
                crc,
                time.time(),
                upload.content_type,
                "Multipart",
                final,
                "",
                upload.headers,
            )
            old = self._put_row(rec)
            blobs = self._drop_upload(upload.upload_id)
        for b in [*blobs, *([old] if old else [])]:
            self._unlink_blob(b)
        return rec
