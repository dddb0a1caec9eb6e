"""File reads re-rooted under a directory: a mounted guest rootfs or a captured machine.

Every path is resolved inside the root the way the guest's kernel would resolve it there: absolute link targets start
at the root, ``..`` stops at the root. Nothing a link says can reach a file outside it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Sequence

from .base import CommandResult, LineCallback, Target, TargetError
from .local import _read_capped, _write_atomic

MAX_LINKS = 40  # as Linux's MAXSYMLINKS
DEFAULT_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class SysrootTarget:
    """Files under ``root``; commands only through ``inner`` (they run there, not inside the root)."""

    def __init__(self, root: str | os.PathLike[str], *, inner: Target | None = None) -> None:
        self.root = os.path.realpath(os.fspath(root))
        self.inner = inner
        self.name = f"sysroot:{self.root}"

    # -- resolution -----------------------------------------------------------------------------------------------

    def host_path(self, path: str, *, follow_last: bool = True) -> str:
        """Where the guest path ``path`` lies on this machine; symlinks resolved without leaving the root."""
        if not path.startswith("/"):
            path = "/" + path  # guest paths are absolute; a relative one is taken from the guest's /
        resolved: list[str] = []  # components below the root, all existing non-links (or the missing tail)
        pending = [p for p in path.split("/") if p]
        links = 0
        while pending:
            part = pending.pop(0)
            if part == ".":
                continue
            if part == "..":
                if resolved:
                    resolved.pop()
                continue
            candidate = os.path.join(self.root, *resolved, part)
            is_last = not pending
            if (follow_last or not is_last) and os.path.islink(candidate):
                links += 1
                if links > MAX_LINKS:
                    raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
                target = os.readlink(candidate)
                if target.startswith("/"):
                    resolved = []
                pending = [p for p in target.split("/") if p] + pending
                continue
            resolved.append(part)
        return os.path.join(self.root, *resolved)

    def _guest_path(self, host: str) -> str:
        rel = os.path.relpath(host, self.root)
        return "/" if rel == "." else "/" + rel

    # -- files ----------------------------------------------------------------------------------------------------

    async def read_file(self, path: str, *, max_bytes: int = 4 * 1024 * 1024) -> bytes:
        return await asyncio.to_thread(lambda: _read_capped(self.host_path(path), max_bytes))

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        await asyncio.to_thread(lambda: _write_atomic(self.host_path(path), data, mode))

    def _exists(self, path: str) -> bool:
        try:
            return os.path.exists(self.host_path(path))  # every link on the way was resolved inside the root
        except OSError:
            return False

    async def exists(self, path: str) -> bool:
        return await asyncio.to_thread(self._exists, path)

    async def listdir(self, path: str) -> list[str]:
        return sorted(await asyncio.to_thread(lambda: os.listdir(self.host_path(path))))

    def _readlink(self, path: str) -> str | None:
        host = self.host_path(path, follow_last=False)
        if not os.path.lexists(host):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return os.readlink(host) if os.path.islink(host) else None

    async def readlink(self, path: str) -> str | None:
        return await asyncio.to_thread(self._readlink, path)

    def _which(self, command: str) -> str | None:
        dirs: Sequence[str] = [os.path.dirname(command)] if "/" in command else DEFAULT_PATH
        for d in dirs:
            candidate = f"{d.rstrip('/')}/{os.path.basename(command)}"
            try:
                st = os.stat(self.host_path(candidate))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return candidate
        return None

    async def which(self, command: str) -> str | None:
        """Searches the guest's standard PATH inside the root (what is installed there, not what ``inner`` runs)."""
        return await asyncio.to_thread(self._which, command)

    # -- commands -------------------------------------------------------------------------------------------------

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        on_line: LineCallback | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        if self.inner is None:
            raise TargetError(
                f"commands cannot run in a sysroot; {self.name} only gives file access. "
                "Give a machine target (local, ssh://…) for checks that run commands."
            )
        return await self.inner.run(argv, stdin=stdin, timeout=timeout, on_line=on_line, env=env)

    async def close(self) -> None:
        return None  # ``inner`` belongs to whoever made it (it is often shared with another role)

    def __repr__(self) -> str:
        return f"SysrootTarget({self.root!r}, inner={self.inner!r})"
