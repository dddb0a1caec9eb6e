"""Resource backends of the lab KBS: local files under the state dir, or a KMS looked up by ``<tag>`` only."""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

# kbs/src/plugins/implementations/resource/backend.rs (ResourceDesc): every segment starts with [A-Za-z0-9_-] and
# continues with [A-Za-z0-9_.-]; so ".", "..", "", "/", "\", NUL and "%" never pass.
_SEGMENT_RE = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_\-.]*")
MAX_SEGMENT = 255


class ResourceNotFound(Exception):
    pass


class ResourceBackendError(Exception):
    pass


def valid_segment(seg: str) -> bool:
    return isinstance(seg, str) and 0 < len(seg) <= MAX_SEGMENT and _SEGMENT_RE.fullmatch(seg) is not None


def check_resource_path(repo: str, type_: str, tag: str) -> None:
    for seg in (repo, type_, tag):
        if not valid_segment(seg):
            raise ValueError("illegal ResourceDesc format.")


class LocalStore:
    """``<state_dir>/kbs-repository/<repo>/<type>/<tag>``; never touches anything outside that directory."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._real_root = self.root.resolve()
        self._lock = threading.Lock()

    def _path(self, repo: str, type_: str, tag: str) -> Path:
        check_resource_path(repo, type_, tag)
        path = self._real_root / repo / type_ / tag
        # Defence in depth (symlinks planted in the store): the resolved path must stay inside the root.
        resolved = path.resolve()
        if not resolved.is_relative_to(self._real_root) or resolved == self._real_root:
            raise ValueError("illegal ResourceDesc format.")
        return path

    def read(self, repo: str, type_: str, tag: str) -> bytes:
        path = self._path(repo, type_, tag)
        try:
            if not path.is_file():
                raise ResourceNotFound(f"{repo}/{type_}/{tag}")
            return path.read_bytes()
        except OSError as exc:
            raise ResourceNotFound(f"{repo}/{type_}/{tag}: {exc.strerror}") from None

    def write(self, repo: str, type_: str, tag: str, data: bytes) -> None:
        path = self._path(repo, type_, tag)
        with self._lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                raise ResourceBackendError(f"{repo}/{type_}/{tag} is a directory")
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                os.chmod(tmp, 0o600)
                os.replace(tmp, path)
            except BaseException:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                raise

    def delete(self, repo: str, type_: str, tag: str) -> None:
        path = self._path(repo, type_, tag)
        with self._lock:
            if not path.is_file():
                raise ResourceNotFound(f"{repo}/{type_}/{tag}")
            path.unlink()


class KmsBackend:
    """The Alibaba ``aliyun_kms`` resource backend: repository and type are ignored, ``<tag>`` is the secret name."""

    def __init__(self, lookup: Callable[[str], bytes | None] | None) -> None:
        self.lookup = lookup

    def read(self, tag: str) -> bytes:
        if self.lookup is None:
            raise ResourceBackendError("no KMS is wired to the lab Trustee")
        try:
            value = self.lookup(tag)
        except Exception as exc:
            raise ResourceBackendError(f"{type(exc).__name__}: {exc}") from None
        if value is None:
            raise ResourceNotFound(tag)
        if isinstance(value, str):
            return value.encode("utf-8")
        return bytes(value)
