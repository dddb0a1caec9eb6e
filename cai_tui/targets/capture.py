"""A captured machine, inspected as if it were live: commands are answered from ``scripts/capture-machine.sh`` files.

A capture is a directory of text files, each the output of one command::

    # $ nvidia-smi conf-compute -f          <- the command line (capture-machine.sh writes "$*")
    CC status: OFF                         <- stdout and stderr together (2>&1)
    # rc=0                                 <- the exit status ("?" in hand-made files whose source showed none)

Leading ``## `` lines (notes of hand-made files) are ignored. ``run(argv)`` looks the command line up as
``shlex.join(argv)`` and as ``" ".join(argv)`` (capture-machine.sh prints ``sh -c <script>`` unquoted); a command that
was not captured answers rc 127 with ``not in the capture (…)`` on stderr (see :func:`is_not_captured`). Files can be
read only when the capture has a ``sysroot/`` folder (a copy of the machine's files), through
:class:`~cai_tui.targets.sysroot.SysrootTarget`; without one, file access raises :class:`TargetError`. A capture is
evidence: it is never written to.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from .base import CommandResult, LineCallback, Target, TargetError
from .sysroot import SysrootTarget

HEADER = "# $ "
NOTE = "## "
SYSROOT_DIR = "sysroot"
NOT_CAPTURED = "not in the capture"
UNKNOWN_RC = 255  # "# rc=?": the source did not show the exit status; reported as a failure of unknown kind
MAX_CAPTURE_BYTES = 16 * 1024 * 1024
_RC = re.compile(r"^(?P<before>.*?)# rc=(?P<rc>-?\d{1,4}|\?)\s*$")


@dataclass(frozen=True)
class CapturedCommand:
    command: str  # the header's command line, as written
    output: str  # stdout and stderr together, as captured
    rc: int
    file: str  # where it was read from


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read(MAX_CAPTURE_BYTES).decode("utf-8", "replace")


def _header_of(path: str) -> str | None:
    """The command line of a capture file (``# $ …`` after any ``## `` notes), None for other files."""
    try:
        with open(path, "rb") as f:
            head = f.read(64 * 1024).decode("utf-8", "replace")
    except OSError:
        return None
    for line in head.splitlines():
        if line.startswith(NOTE) or line.rstrip() == "##":
            continue
        return line[len(HEADER) :].strip() if line.startswith(HEADER) else None
    return None


def parse_capture_file(path: str) -> CapturedCommand:
    """One capture file → the command, its output and exit status. ValueError when it is not in that layout."""
    lines = _read_text(path).splitlines()
    i = 0
    while i < len(lines) and (lines[i].startswith(NOTE) or lines[i].rstrip() == "##"):
        i += 1
    if i >= len(lines) or not lines[i].startswith(HEADER):
        raise ValueError(f"{path}: not a capture file (the first line must be '# $ <command>')")
    command = lines[i][len(HEADER) :].strip()
    body = lines[i + 1 :]
    while body and not body[-1].strip():
        body.pop()
    m = _RC.match(body[-1]) if body else None
    if m is None:
        raise ValueError(f"{path}: the last line must be '# rc=<exit status>' (capture-machine.sh writes it)")
    rc_text = m["rc"]
    body[-1] = m["before"]  # output without a final newline runs into the rc line: "foo# rc=0"
    if not body[-1]:
        body.pop()
    output = "".join(line + "\n" for line in body)
    return CapturedCommand(command, output, UNKNOWN_RC if rc_text == "?" else int(rc_text), path)


def _is_capture_file(path: str) -> bool:
    if not os.path.isfile(path) or _header_of(path) is None:
        return False
    try:
        parse_capture_file(path)
    except (OSError, ValueError):
        return False
    return True


def is_capture_dir(path: str | os.PathLike[str]) -> bool:
    """The directory holds at least one capture file (``# $ <command>`` … ``# rc=N``) at its top level."""
    root = os.fspath(path)
    try:
        names = os.listdir(root)
    except OSError:
        return False
    return any(_is_capture_file(os.path.join(root, n)) for n in sorted(names))


def is_not_captured(result: CommandResult) -> bool:
    """The command was not recorded in the capture (as opposed to a recorded failure)."""
    return result.rc == 127 and result.stderr.startswith(NOT_CAPTURED)


class CaptureTarget:
    """Commands answered from a capture directory; files from its ``sysroot/`` folder when it has one."""

    def __init__(self, directory: str | os.PathLike[str], *, name: str | None = None) -> None:
        """``name``: what evidence and reports call it (default ``capture:<dir>``; a fleet host's capture lives in
        a temporary folder, so it is named for its host)."""
        self.root = os.path.realpath(os.fspath(directory))
        if not os.path.isdir(self.root):
            raise ValueError(f"{self.root}: not a directory (unpack the capture there first)")
        self.name = name or f"capture:{self.root}"
        self._commands: dict[str, CapturedCommand] = {}
        for entry in sorted(os.listdir(self.root)):
            path = os.path.join(self.root, entry)
            if not os.path.isfile(path) or _header_of(path) is None:
                continue
            captured = parse_capture_file(path)
            other = self._commands.get(captured.command)
            if other is not None:
                raise ValueError(
                    f"{self.root}: {entry} and {os.path.basename(other.file)} both capture {captured.command!r}; "
                    "keep one (a capture must not contradict itself)"
                )
            self._commands[captured.command] = captured
        if not self._commands:
            raise ValueError(
                f"{self.root}: no capture files (files starting with '# $ <command>'); see capture-machine.sh"
            )
        sysroot = os.path.join(self.root, SYSROOT_DIR)
        self.sysroot: SysrootTarget | None = SysrootTarget(sysroot) if os.path.isdir(sysroot) else None

    @property
    def commands(self) -> list[str]:
        """The captured command lines, sorted."""
        return sorted(self._commands)

    def lookup(self, argv: Sequence[str]) -> CapturedCommand | None:
        args = [str(a) for a in argv]
        for key in (shlex.join(args), " ".join(args)):
            if key in self._commands:
                return self._commands[key]
        return None

    async def run(
        self,
        argv: Sequence[str],
        *,
        stdin: bytes | None = None,
        timeout: float = 30.0,
        on_line: LineCallback | None = None,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        args = tuple(str(a) for a in argv)
        captured = self.lookup(args)
        if captured is None:
            message = (
                f"{NOT_CAPTURED} ({shlex.join(args)}; {self.root} holds {len(self._commands)} captured commands; "
                "capture-machine.sh records what the checks run)\n"
            )
            if on_line is not None:
                on_line("stderr", message.rstrip("\n"))
            return CommandResult(args, 127, "", message, 0.0, self.name)
        if on_line is not None:
            for line in captured.output.splitlines():
                on_line("stdout", line)
        return CommandResult(args, captured.rc, captured.output, "", 0.0, self.name)

    # -- files: only through sysroot/ ------------------------------------------------------------------------------

    def _files(self, what: str) -> SysrootTarget:
        if self.sysroot is None:
            raise TargetError(
                f"{self.name}: {what} needs a {SYSROOT_DIR}/ folder in the capture (a copy of the machine's files); "
                "this capture only answers the commands it recorded"
            )
        return self.sysroot

    async def read_file(self, path: str, *, max_bytes: int = 4 * 1024 * 1024) -> bytes:
        return await self._files(f"reading {path}").read_file(path, max_bytes=max_bytes)

    async def write_file(self, path: str, data: bytes, *, mode: int = 0o600) -> None:
        raise TargetError(f"{self.name}: a capture is read-only (cannot write {path})")

    async def exists(self, path: str) -> bool:
        return await self._files(f"looking for {path}").exists(path)

    async def listdir(self, path: str) -> list[str]:
        return await self._files(f"listing {path}").listdir(path)

    async def readlink(self, path: str) -> str | None:
        return await self._files(f"reading the link {path}").readlink(path)

    async def which(self, command: str) -> str | None:
        return await self._files(f"finding {command} on PATH").which(command)

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"CaptureTarget({self.root!r})"


# --- a capture as one stream (what ``doctor --hosts`` gathers: every fact between boundary lines) -----------------

MAX_STREAM = 32 * 1024 * 1024
STREAM_BOUNDARY = re.compile(r"^@@cai-tui-capture-[0-9a-f]{8,64}@@$")
_FACT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


class CaptureStreamError(ValueError):
    """The host's output is not a capture stream (the script did not run as written)."""


def split_capture(stream: str, boundary: str) -> dict[str, str]:
    """name → capture file text (``# $ command`` … ``# rc=N``) from the script's stdout (CRLF of a pty undone)."""
    if len(stream) > MAX_STREAM:
        raise CaptureStreamError(f"the capture is larger than {MAX_STREAM // (1024 * 1024)} MiB")
    text = stream.replace("\r\n", "\n")
    out: dict[str, str] = {}
    name: str | None = None
    body: list[str] = []
    for line in text.split("\n"):
        if line.startswith(boundary + " "):
            if name is not None:
                out[name] = "\n".join(body).rstrip("\n") + "\n"
            name = line[len(boundary) + 1 :].strip()
            if not _FACT_NAME.match(name):
                raise CaptureStreamError(f"a fact named {name!r} is not a file name")
            body = []
        elif name is not None:
            body.append(line)
    if name is not None:
        out[name] = "\n".join(body).rstrip("\n") + "\n"
    if not out:
        head = text.strip().splitlines()[:2]
        raise CaptureStreamError(
            "no facts in the host's output" + (f" (it printed: {' | '.join(head)})" if head else "")
        )
    return out


def is_capture_stream(path: str | os.PathLike[str]) -> bool:
    """True for a file that starts with a capture stream's boundary line (``@@cai-tui-capture-…@@ NAME``)."""
    try:
        with open(path, "rb") as f:
            first = f.readline(256).decode("utf-8", "replace").strip()
    except OSError:
        return False
    return bool(STREAM_BOUNDARY.match(first.split(" ", 1)[0]))


def capture_from_stream(path: str | os.PathLike[str]) -> CaptureTarget:
    """A CaptureTarget over a capture stream file (the facts are read into memory; nothing is left on disk)."""
    import shutil
    import tempfile

    text = _read_text(os.fspath(path))
    boundary = text.split(" ", 1)[0].strip()
    files = split_capture(text, boundary)
    tmp = tempfile.mkdtemp(prefix="cai-tui-capture-")
    try:
        for name, body in files.items():
            with open(os.path.join(tmp, f"{name}.txt"), "w", encoding="utf-8") as f:
                f.write(body)
        target = CaptureTarget(tmp, name=f"capture:{os.path.realpath(os.fspath(path))}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    target.root = os.path.realpath(os.fspath(path))  # where it came from (the folder it was read through is gone)
    return target


def target_for_sysroot(path: str | os.PathLike[str], *, inner: Target | None = None) -> Target:
    """What ``--sysroot DIR`` inspects: a :class:`CaptureTarget` when DIR holds capture files (or is a capture
    stream file, as ``doctor --hosts`` and an exported fleet playbook gather), else a
    :class:`SysrootTarget` (a mounted rootfs; its commands go to ``inner`` when given)."""
    if os.path.isfile(path) and is_capture_stream(path):
        return capture_from_stream(path)
    if is_capture_dir(path):
        return CaptureTarget(path)
    return SysrootTarget(path, inner=inner)


__all__ = [
    "NOT_CAPTURED",
    "CaptureStreamError",
    "CaptureTarget",
    "CapturedCommand",
    "capture_from_stream",
    "is_capture_dir",
    "is_capture_stream",
    "is_not_captured",
    "parse_capture_file",
    "split_capture",
    "target_for_sysroot",
]
