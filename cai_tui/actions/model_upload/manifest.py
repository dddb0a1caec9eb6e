"""The SHA-256 manifest of the plaintext files, hashed in the background while an encrypted upload runs."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from ...events import CancelToken
from .options import MiB, UploadInputError
from .tree import LocalFile


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

        from ... import __version__
        from ..model_manifest import ALGORITHM, MANIFEST_VERSION

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
        from ..model_manifest import manifest_bytes

        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return manifest_bytes(self._result)
