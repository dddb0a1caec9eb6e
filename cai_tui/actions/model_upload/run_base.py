"""The state one upload run shares between its parts (set-up, running, large objects, verification): the bucket, the
tree, the journal, the objects and their CRCs; running calls on the thread pool and recording a finished object."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from ...clients.oss import OssActionError
from ...events import NEVER, Cancelled, CancelToken, EventSink
from .journal import Journal
from .manifest import _ManifestHasher
from .objects import _Obj
from .options import JOURNAL_NAME, JOURNAL_VERSION, MARKER_NAME, UploadOptions
from .tree import LocalTree


class _RunBase:
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
