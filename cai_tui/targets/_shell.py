"""File operations through a POSIX shell on the far side, for targets without a file API of their own.

They need ``sh`` and a few tools (``head``, ``base64``, ``cat``, ``chmod``, ``mv``, ``ls``, ``readlink``) there —
coreutils or busybox. Contents travel as base64 so binary files survive a text-only ``run``.
"""

from __future__ import annotations

import base64
import errno
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .base import CommandResult, TargetError

if TYPE_CHECKING:
    from .base import Target

FILE_OP_TIMEOUT = 60.0

_READ = """f=$1
[ -d "$f" ] && exit 21
[ -e "$f" ] || exit 2
[ -r "$f" ] || exit 13
head -c "$2" "$f" | base64"""

_WRITE = """d=${1%/*}
[ -n "$d" ] || d=/
[ -d "$d" ] || exit 2
[ -d "$1" ] && exit 21
umask 077
t="$1.cai-tmp.$$"
if cat > "$t" && chmod "$2" "$t" && mv -f "$t" "$1"; then exit 0; fi
rm -f "$t"
exit 1"""

_LISTDIR = """[ -e "$1" ] || exit 2
[ -d "$1" ] || exit 20
ls -1A "$1" """

_READLINK = """if [ -L "$1" ]; then readlink "$1"; elif [ -e "$1" ]; then exit 3; else exit 2; fi"""

_WHICH = """case $1 in */*) [ -f "$1" ] && [ -x "$1" ] && { echo "$1"; exit 0; }; exit 1;; esac
IFS=:
for d in $PATH; do
  [ -n "$d" ] || d=.
  if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then echo "$d/$1"; exit 0; fi
done
exit 1"""

_ERRNO = {2: errno.ENOENT, 13: errno.EACCES, 20: errno.ENOTDIR, 21: errno.EISDIR}


class ShellFiles:
    """read/write/exists/listdir/readlink/which for ``target`` via ``sh -c`` scripts."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def _sh(self, script: str, args: Sequence[str], stdin: bytes | None = None) -> CommandResult:
        result = await self.target.run(["sh", "-c", script, "sh", *args], stdin=stdin, timeout=FILE_OP_TIMEOUT)
        if result.rc in (126, 127):
            raise TargetError(
                f"{self.target.name}: file access needs a POSIX shell there (sh, head, base64, cat, mv, ls, readlink): "
                f"{result.stderr.strip() or 'sh not found'}"
            )
        if result.rc == 124:
            raise TargetError(f"{self.target.name}: file operation timed out after {FILE_OP_TIMEOUT:g}s")
        return result

    def _raise_for(self, result: CommandResult, path: str, what: str) -> None:
        code = _ERRNO.get(result.rc)
        if code is not None:
            raise OSError(code, os.strerror(code), path)
        raise OSError(
            errno.EIO, f"{what} {path} on {self.target.name} failed (rc {result.rc}): {result.stderr.strip()}"
        )

    async def read_file(self, path: str, max_bytes: int) -> bytes:
        result = await self._sh(_READ, [path, str(max(0, max_bytes))])
        if result.rc != 0:
            self._raise_for(result, path, "reading")
        return base64.b64decode("".join(result.stdout.split()))

    async def write_file(self, path: str, data: bytes, mode: int) -> None:
        result = await self._sh(_WRITE, [path, format(mode & 0o7777, "o")], stdin=data)
        if result.rc != 0:
            self._raise_for(result, path, "writing")

    async def exists(self, path: str) -> bool:
        result = await self._sh('[ -e "$1" ]', [path])
        return result.rc == 0

    async def listdir(self, path: str) -> list[str]:
        result = await self._sh(_LISTDIR, [path])
        if result.rc != 0:
            self._raise_for(result, path, "listing")
        return sorted(line for line in result.stdout.split("\n") if line)

    async def readlink(self, path: str) -> str | None:
        result = await self._sh(_READLINK, [path])
        if result.rc == 3:
            return None
        if result.rc != 0:
            self._raise_for(result, path, "reading the link")
        return result.stdout.removesuffix("\n")

    async def which(self, command: str) -> str | None:
        result = await self._sh(_WHICH, [command])
        found = result.stdout.strip()
        return found if result.rc == 0 and found else None
