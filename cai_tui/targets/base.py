"""Where commands run and files are read: the Target contract.

Implementations: local (asyncio subprocess), SSH (paramiko, host keys verified), in a container (docker exec,
``ctr task exec``), and sysroot (file reads re-rooted under a directory: a mounted guest rootfs or a capture).
Every method is async and honours its timeout; output is streamed line by line to ``on_line`` when given.

Semantics every implementation keeps (tests/targets hold them to it):
* ``run``: ``on_line`` is called on the event loop's thread, in order; ``env`` adds to the target's environment;
  a timeout kills the command (its process group where the target can) and returns rc 124 with what was read;
  cancelling the awaiting task kills the command too; a command that is not there is rc 127.
* ``read_file`` returns at most ``max_bytes`` (the first ones); a directory raises IsADirectoryError.
* ``write_file`` writes a temporary file beside the path and renames it over (atomic where the target allows).
* ``exists`` follows links (a dangling link does not exist); ``readlink`` gives the link's text, None for a
  non-link, FileNotFoundError when absent; ``which`` gives an absolute path or None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

LineCallback = Callable[[str, str], None]  # (stream "stdout"|"stderr", line without newline)


@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    rc: int  # 127: command not found; 124: timed out
    stdout: str
    stderr: str
    duration_s: float
    target: str

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def command(self) -> str:
        import shlex

        return shlex.join(self.argv)


class TargetError(Exception):
    """The target itself failed (connection refused, unknown host key, container gone): message says what to do."""


class HostKeyRefused(TargetError):
    """An unknown or changed SSH host key; the message tells how to accept it explicitly."""


@runtime_checkable
class Target(Protocol):
    name: str  # how evidence cites it: "local", "ssh://root@203.0.113.7:22", "docker://cai-docker-oss-1", "sysroot:/mnt/rootfs"

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        on_line: LineCallback | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult: ...

    async def read_file(
        self, path: str, *, max_bytes: int = 4 * 1024 * 1024
    ) -> bytes: ...  # FileNotFoundError when absent

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None: ...

    async def exists(self, path: str) -> bool: ...

    async def listdir(self, path: str) -> list[str]: ...  # FileNotFoundError when absent

    async def readlink(self, path: str) -> str | None: ...  # None when not a link

    async def which(self, command: str) -> str | None: ...

    async def close(self) -> None: ...
