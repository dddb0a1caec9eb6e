"""Encrypt a model directory with gocryptfs (CAI-1.5): the native engine, or the real binary through FUSE.

* ``native`` (default): :mod:`cai_tui.gocryptfs` writes the cipherdir directly, no FUSE or root, one process per core.
* ``fuse``: the seed's method driven exactly: ``gocryptfs -init -q -passfile F -- DST``, mount DST on a mountpoint
  (stdout/stderr to a log file, never a pipe: the daemon inherits them), copy the model's *contents* into it,
  ``fusermount3 -u`` on every exit path (errors, Ctrl-C, SIGTERM).

Both write ``.cai-manifest.json`` (SHA-256 of every plaintext file, computed while encrypting) into the encrypted
tree. While a destination is being filled it holds a ``CAI-INCOMPLETE`` marker; on failure or cancellation the
marker stays and there is no ``gocryptfs.conf`` (the FUSE engine renames its to ``gocryptfs.conf.incomplete``), so a
half-done output is never taken for a model, and the next run into the same destination recognises it
(:func:`unfinished_output`), clears it and starts over.

Progress and notes go to one :data:`~cai_tui.events.EventSink` (``on_event``): ``progress`` events in bytes from
``source`` ``encrypt`` (both engines) and ``sha256`` (the manifest), ``note`` events for a person. ``cancel``
(a :class:`~cai_tui.events.CancelToken`) is checked between files and 1-MiB chunks; a cancelled run raises
:class:`~cai_tui.events.Cancelled` with the destination left as after a failure.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import io
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..events import NEVER, Cancelled, CancelToken, EventSink, labelled, note
from ..events import progress as progress_event
from . import ActionError, human_bytes, human_rate
from .model_manifest import MANIFEST_NAME, MARKER_NAME, build_manifest, manifest_bytes

MAX_PASSWORD_LEN = 2048  # as gocryptfs -passfile
RERUN = "run the same command again to start over (it clears the unfinished output first)"
CONF_NAME = "gocryptfs.conf"
INCOMPLETE_CONF = "gocryptfs.conf.incomplete"
SEED_VERSION = (2, 4)
SAME_FORMAT_VERSIONS = ((2, 3), (2, 4))
INSTALL_HINT = (
    "install gocryptfs v2.4.0 (CAI-1.3: the static release binary to /usr/local/bin, or `apt-get install gocryptfs`)"
)
FUSE_HINT = "install FUSE (`yum install -y fuse` or `apt-get install -y fuse3`)"
GOCRYPTFS_EXIT = {
    1: "usage error",
    6: "the cipher directory is not empty or not valid",
    9: "the password is empty",
    10: "the mountpoint is not valid: it must exist, be an empty directory and not be mounted already",
    11: "gocryptfs.conf is missing",
    12: "wrong password",
    22: "the password is empty",
    23: "gocryptfs.conf cannot be opened",
    26: "fsck found errors",
}


# ------------------------------------------------------------------------------------------------------- inputs
def read_password_file(path: str | os.PathLike[str]) -> tuple[bytes, list[str]]:
    """The first line of ``path`` without its newline, exactly as ``gocryptfs -passfile`` reads it; it joins the
    redaction set. Returns ``(password, warnings)``; raises :class:`ActionError` (exit 2)."""
    from ..recipe import REDACTOR

    name = os.fspath(path)
    try:
        with open(os.path.expanduser(name), "rb") as f:
            data = f.read(MAX_PASSWORD_LEN + 2)
    except OSError as exc:
        raise ActionError(f"--password-file {name}: cannot read it ({exc.strerror or exc})") from None
    first, _, rest = data.partition(b"\n")
    if not first:
        raise ActionError(f"--password-file {name}: the first line is empty (gocryptfs uses the first line)")
    if len(first) > MAX_PASSWORD_LEN:
        raise ActionError(f"--password-file {name}: longer than {MAX_PASSWORD_LEN} bytes (gocryptfs' limit)")
    REDACTOR.add(first)
    warnings = []
    if rest.strip():
        warnings.append(f"{name}: only the first line is the password; the rest is ignored (as gocryptfs does)")
    if first.endswith(b"\r"):
        warnings.append(f"{name}: the password ends with a carriage return (a Windows line end) that is part of it")
    return first, warnings


MARKER_HEAD = b"Unfinished cai-tui encryption"


def unfinished_output(dst: str) -> bool:
    """Whether ``dst`` is what a failed or cancelled run of this module left: our marker, no ``gocryptfs.conf``."""
    marker = os.path.join(dst, MARKER_NAME)
    if os.path.islink(marker) or not os.path.isfile(marker) or os.path.lexists(os.path.join(dst, CONF_NAME)):
        return False
    try:
        with open(marker, "rb") as f:
            return f.read(len(MARKER_HEAD)) == MARKER_HEAD
    except OSError:
        return False


def check_destination(dst: str) -> str | None:
    """Refuse a destination that is not absent or empty, except an unfinished output of an earlier run, which is
    cleared (its directory kept); returns a note saying so, or None."""
    if not os.path.lexists(dst):
        return None
    if not os.path.isdir(dst) or os.path.islink(dst):
        raise ActionError(f"{dst} exists and is not a directory; choose a new destination")
    with os.scandir(dst) as it:
        if next(it, None) is None:
            return None
    if not unfinished_output(dst):
        raise ActionError(f"{dst} is not empty; give an absent or empty destination (nothing was changed)")
    try:
        with os.scandir(dst) as it:
            for entry in list(it):
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
    except OSError as exc:
        raise ActionError(f"{dst} holds an unfinished encryption that cannot be removed ({exc}); delete it") from None
    return f"{dst} held an unfinished encryption ({MARKER_NAME}) from an earlier run: cleared, starting over"


def write_marker(dst: str, engine: str, src: str) -> str:
    path = os.path.join(dst, MARKER_NAME)
    when = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(path, "w", encoding="utf-8") as f:
        f.write(
            f"{MARKER_HEAD.decode()} ({engine} engine) of {src}, started {when}.\n"
            "This directory is NOT a usable model. Run `cai-tui model encrypt` into it again: it starts over.\n"
        )
    return path


@dataclass
class EncryptResult:
    engine: str
    src: str
    dst: str
    files: int = 0
    plain_bytes: int = 0
    seconds: float = 0.0
    manifest_files: int = 0
    gocryptfs_version: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def mb_per_s(self) -> float:
        return self.plain_bytes / self.seconds / 1e6 if self.seconds > 0 else 0.0

    @property
    def rate(self) -> str:
        """The average rate over the whole run, for a person (``404.6 KiB/s``)."""
        return human_rate(self.plain_bytes, self.seconds)


class _Hasher:
    """Builds the manifest in a background thread while the encryption runs."""

    def __init__(self, src: str, progress: EventSink | None) -> None:
        self.manifest: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self._stop = CancelToken()
        self._thread = threading.Thread(target=self._run, args=(src, progress), daemon=True, name="cai-manifest")
        self._thread.start()

    def _run(self, src: str, progress: EventSink | None) -> None:
        try:
            self.manifest = build_manifest(src, progress=progress, cancel=self._stop)
        except BaseException as exc:
            self.error = exc

    def cancel(self) -> None:
        """Stop hashing (on a failure or Ctrl-C) so that the process can exit at once."""
        self._stop.cancel()
        self._thread.join()

    def result(self, cancel: CancelToken = NEVER) -> dict[str, Any]:
        while self._thread.is_alive():
            self._thread.join(0.1)
            cancel.check()
        if self.error is not None:
            raise self.error
        assert self.manifest is not None
        return self.manifest


def _failure(exc: BaseException, dst: str, what: str) -> ActionError:
    left = f"{dst} is left incomplete (marked {MARKER_NAME}, no {CONF_NAME}): {RERUN}"
    if isinstance(exc, ActionError):
        return ActionError(f"{exc.message}; {left}", exc.exit_code)
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return ActionError(f"disk full while {what} ({exc.strerror}); {left}; free space and run again", 1)
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if exc.filename else ""
        return ActionError(f"{what} failed:{name} {exc.strerror or exc}; {left}", 1)
    from ..gocryptfs import GocryptfsError

    if isinstance(exc, GocryptfsError):
        return ActionError(f"{what} failed: {exc}; {left}", 2)
    return ActionError(f"{what} failed: {type(exc).__name__}: {exc}; {left}", 1)


def _start(dst: str, on_event: EventSink | None) -> None:
    cleared = check_destination(dst)
    if cleared is not None and on_event is not None:
        on_event(note(cleared, level="warn", source="encrypt"))


# ------------------------------------------------------------------------------------------------------- native
def encrypt_native(
    src: str,
    dst: str,
    password: bytes,
    *,
    workers: int | None = None,
    on_event: EventSink | None = None,
    cancel: CancelToken = NEVER,
) -> EncryptResult:
    """Encrypt the contents of ``src`` into the new cipherdir ``dst`` with the native engine (+ manifest)."""
    from ..gocryptfs import CipherdirWriter, create_config
    from ..gocryptfs.writer import tree_plain_bytes

    src, dst = os.path.abspath(src), os.path.abspath(dst)
    _start(dst, on_event)
    started = time.monotonic()
    config, master_key = create_config(password)
    total = tree_plain_bytes(src, skip=frozenset({MANIFEST_NAME}))
    hasher = _Hasher(src, labelled(on_event, source="sha256"))
    result = EncryptResult("native", src, dst)
    try:
        writer = CipherdirWriter(
            dst,
            config,
            master_key,
            workers=workers or os.cpu_count() or 1,
            progress=labelled(on_event, source="encrypt"),
            cancel=cancel,
            total_bytes=total,
        )
    except OSError as exc:
        hasher.cancel()
        raise _failure(exc, dst, "creating the cipherdir") from exc
    try:
        with writer:
            write_marker(dst, "native", src)
            for name, full, st in _top_entries(src):
                if stat.S_ISDIR(st.st_mode):
                    writer.mkdir(name, mode=st.st_mode, times_ns=(st.st_atime_ns, st.st_mtime_ns))
                    writer.add_tree(full, name)
                elif stat.S_ISREG(st.st_mode):
                    writer.add_file(full, name, st=st)
                elif stat.S_ISLNK(st.st_mode):
                    writer.add_symlink(name, os.readlink(full), times_ns=(st.st_atime_ns, st.st_mtime_ns))
                else:
                    raise ActionError(f"{full}: cannot encrypt a device node, FIFO or socket; remove it from the model")
            writer.wait()
            manifest = hasher.result(cancel)
            blob = manifest_bytes(manifest)
            writer.total_bytes = total + len(blob)
            writer.add_fileobj(io.BytesIO(blob), MANIFEST_NAME, mode=0o444)
            stats = writer.finish()  # writes gocryptfs.conf last
    except BaseException as exc:
        hasher.cancel()
        if isinstance(exc, (KeyboardInterrupt, Cancelled)):
            raise
        raise _failure(exc, dst, "encrypting") from exc
    os.unlink(os.path.join(dst, MARKER_NAME))
    result.files = stats.files - 1
    result.plain_bytes = stats.plain_bytes - len(blob)
    result.manifest_files = len(manifest["files"])
    result.seconds = time.monotonic() - started
    return result


def _top_entries(src: str) -> Iterator[tuple[str, str, os.stat_result]]:
    with os.scandir(src) as it:
        names = sorted((e.name for e in it), key=os.fsencode)
    for name in names:
        if name == MANIFEST_NAME:
            continue  # a decrypted model's old manifest: a new one is written
        full = os.path.join(src, name)
        yield name, full, os.lstat(full)


# ------------------------------------------------------------------------------------------------------- FUSE
def parse_version(text: str) -> tuple[int, ...] | None:
    """``gocryptfs 2.3; go-fuse …`` or ``gocryptfs v2.4.0 without_openssl; …`` → ``(2, 3)`` / ``(2, 4, 0)``."""
    m = re.search(r"gocryptfs v?(\d+)\.(\d+)(?:\.(\d+))?", text)
    if m is None:
        return None
    return tuple(int(g) for g in m.groups() if g is not None)


def mounted(path: str) -> bool:
    """Whether ``path`` is a mountpoint in /proc/mounts (octal escapes decoded)."""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.split()
                if len(parts) > 1 and re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), parts[1]) == real:
                    return True
    except OSError:
        pass
    return False


@dataclass
class GocryptfsBinary:
    """The real ``gocryptfs`` and ``fusermount``; every call sends output to ``log`` (a file, never a pipe)."""

    exe: str
    fusermount: str
    version: tuple[int, ...] | None
    version_line: str
    log: str

    @classmethod
    def find(cls, log: str) -> GocryptfsBinary:
        exe = shutil.which("gocryptfs")
        if exe is None:
            raise ActionError(f"gocryptfs is not on PATH; {INSTALL_HINT}, or use --engine native (no binary needed)")
        fusermount = shutil.which("fusermount3") or shutil.which("fusermount")
        if fusermount is None:
            raise ActionError(f"fusermount3/fusermount is not on PATH; {FUSE_HINT}")
        if not os.path.exists("/dev/fuse"):
            raise ActionError(
                "/dev/fuse is missing: load the module (`modprobe fuse`), or in a container run with "
                "`--device /dev/fuse --cap-add SYS_ADMIN`; or use --engine native"
            )
        out = subprocess.run([exe, "-version"], capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        line = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr).strip() else ""
        return cls(exe, fusermount, parse_version(line), line, log)

    def version_note(self) -> str:
        if self.version is None:
            return f"gocryptfs version not recognised ({self.version_line!r}); the seed supports v2.4.0"
        shown = ".".join(map(str, self.version))
        if self.version[:2] == SEED_VERSION:
            return f"gocryptfs {shown} (the version the seed supports)"
        if self.version[:2] in SAME_FORMAT_VERSIONS:
            return f"gocryptfs {shown}: writes the same format as v2.4.0, which the seed supports"
        return f"gocryptfs {shown}: untested; the seed supports only v2.4.0 with default parameters"

    def _run(self, argv: list[str], what: str, *, new_session: bool = False) -> None:
        with open(self.log, "ab") as out:
            rc = subprocess.run(
                argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, timeout=300, start_new_session=new_session
            ).returncode
        if rc != 0:
            raise ActionError(f"{what} failed: {self.explain(rc)}", 2 if rc in (1, 6, 9, 10, 11, 12, 22, 23) else 1)

    def explain(self, rc: int) -> str:
        from ..recipe import REDACTOR

        try:
            with open(self.log, "rb") as f:
                tail = f.read()[-2000:].decode("utf-8", "replace").strip().splitlines()
        except OSError:
            tail = []
        said = [t for t in tail if "SwitchToSyslog" not in t][-2:]
        detail = f" — gocryptfs said: {REDACTOR.redact(' / '.join(said))}" if said else ""
        return f"exit {rc}: {GOCRYPTFS_EXIT.get(rc, 'error')}{detail}"

    def init(self, cipher: str, passfile: str) -> None:
        self._run([self.exe, "-init", "-q", "-passfile", passfile, "--", cipher], "gocryptfs -init")

    def mount(self, cipher: str, mnt: str, passfile: str, *extra: str) -> None:
        self._run(
            [self.exe, "-q", *extra, "-passfile", passfile, "--", cipher, mnt], "gocryptfs mount", new_session=True
        )

    def unmount(self, mnt: str) -> bool:
        """Unmount (retrying while busy, lazily as a last resort); True when ``mnt`` is no longer mounted."""
        for attempt in range(15):
            if not mounted(mnt):
                return True
            with open(self.log, "ab") as out:
                subprocess.run([self.fusermount, "-u", mnt], stdout=out, stderr=out, stdin=subprocess.DEVNULL)
            if not mounted(mnt):
                return True
            time.sleep(0.05 * (attempt + 1))
        subprocess.run([self.fusermount, "-u", "-z", mnt], capture_output=True, stdin=subprocess.DEVNULL)
        return not mounted(mnt)


@contextlib.contextmanager
def _interrupts_as_keyboard() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (like Ctrl-C) so ``finally`` blocks unmount; main thread only, and only
    where nobody else handles SIGTERM (the CLI turns it into a cancellation)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM for the duration (clean-up must not be interrupted half-way)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def copy_contents(
    src: str, dst: str, progress: EventSink | None = None, cancel: CancelToken = NEVER
) -> tuple[int, int]:
    """Copy what is *inside* ``src`` into ``dst`` (``cp -r src/. dst/``), 1-MiB chunks; returns (files, bytes).
    ``progress`` events after every chunk (bytes so far, ``text`` the path); ``cancel`` checked between chunks."""
    files = done = 0
    fixups: list[tuple[str, int]] = []
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, src)
        out_dir = dst if rel_dir == "." else os.path.join(dst, rel_dir)
        for name in sorted(dirnames + filenames):
            if rel_dir == "." and name == MANIFEST_NAME:
                continue
            cancel.check()
            s, d = os.path.join(dirpath, name), os.path.join(out_dir, name)
            rel = os.path.relpath(s, src)
            st = os.lstat(s)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(s), d)
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(d, 0o700)
                fixups.append((d, stat.S_IMODE(st.st_mode)))
            elif stat.S_ISREG(st.st_mode):
                with open(s, "rb", buffering=0) as fin, open(d, "wb", buffering=0) as fout:
                    while n := fin.readinto(view):
                        chunk = view[:n]
                        while chunk:
                            chunk = chunk[fout.write(chunk) :]
                        done += n
                        if progress is not None:
                            progress(progress_event(done, None, text=rel))
                        cancel.check()
                os.chmod(d, stat.S_IMODE(st.st_mode))
                files += 1
            else:
                raise ActionError(f"{s}: cannot copy a device node, FIFO or socket; remove it from the model")
    for d, mode in reversed(fixups):
        os.chmod(d, mode)
    return files, done


def encrypt_fuse(
    src: str,
    dst: str,
    password_file: str,
    *,
    mountpoint: str | None = None,
    on_event: EventSink | None = None,
    cancel: CancelToken = NEVER,
) -> EncryptResult:
    """The seed's CAI-1.5 with the real binary: init, mount, copy the contents, unmount (always). The binary's
    version goes to ``on_event`` as a note (source ``gocryptfs``)."""
    src, dst = os.path.abspath(src), os.path.abspath(dst)
    password_file = os.path.abspath(os.path.expanduser(password_file))
    _start(dst, on_event)
    fd, log = tempfile.mkstemp(prefix="cai-tui-gocryptfs-", suffix=".log")
    os.close(fd)
    try:
        gb = GocryptfsBinary.find(log)
        if on_event is not None:
            on_event(note(gb.version_note(), source="gocryptfs"))
        result = EncryptResult("fuse", src, dst, gocryptfs_version=gb.version_note())
        created = not os.path.exists(dst)
        os.makedirs(dst, exist_ok=True)
        try:
            gb.init(dst, password_file)
        except ActionError:
            if created:
                shutil.rmtree(dst, ignore_errors=True)  # nothing was written: leave nothing behind
            raise
        return _fill_mounted(gb, src, dst, password_file, mountpoint, result, on_event, cancel)
    finally:
        os.unlink(log)


def _fill_mounted(
    gb: GocryptfsBinary,
    src: str,
    dst: str,
    passfile: str,
    mountpoint: str | None,
    result: EncryptResult,
    on_event: EventSink | None,
    cancel: CancelToken,
) -> EncryptResult:
    from ..gocryptfs.writer import tree_plain_bytes

    started = time.monotonic()
    mnt = os.path.abspath(mountpoint) if mountpoint else tempfile.mkdtemp(prefix="cai-tui-plain-")
    ok = False
    hasher: _Hasher | None = None
    try:
        write_marker(dst, "fuse", src)
        with _interrupts_as_keyboard():
            try:
                gb.mount(dst, mnt, passfile)
                hasher = _Hasher(src, labelled(on_event, source="sha256"))
                total = tree_plain_bytes(src, skip=frozenset({MANIFEST_NAME}))
                copy_progress = labelled(on_event, source="encrypt", total=total)
                result.files, result.plain_bytes = copy_contents(src, mnt, copy_progress, cancel)
                manifest = hasher.result(cancel)
                with open(os.path.join(mnt, MANIFEST_NAME), "wb") as f:
                    f.write(manifest_bytes(manifest))
                os.chmod(os.path.join(mnt, MANIFEST_NAME), 0o444)
                result.manifest_files = len(manifest["files"])
                ok = True
            finally:
                with _signals_held():
                    unmounted = gb.unmount(mnt)
                    if not mountpoint:
                        with contextlib.suppress(OSError):
                            os.rmdir(mnt)
        if not unmounted:
            ok = False
            raise ActionError(f"{mnt} could not be unmounted; run `{gb.fusermount} -u {mnt}`", 1)
    except BaseException as exc:
        ok = False
        if hasher is not None:
            hasher.cancel()
        with contextlib.suppress(OSError):
            os.replace(os.path.join(dst, CONF_NAME), os.path.join(dst, INCOMPLETE_CONF))
        if isinstance(exc, (KeyboardInterrupt, Cancelled)):
            raise
        raise _failure(exc, dst, "copying into the gocryptfs mount") from exc
    finally:
        if ok:
            os.unlink(os.path.join(dst, MARKER_NAME))
    result.seconds = time.monotonic() - started
    result.notes.append(f"{human_bytes(result.plain_bytes)} copied through {mnt}")
    return result
