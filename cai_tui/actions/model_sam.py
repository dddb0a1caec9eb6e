"""Encrypt with Sam (CAI-1.6) by running the SDK's own packager; nothing of Sam is reimplemented here.

The seed's procedure, driven exactly: in ``RAI_SAM_SDK_2.1.0-20240731/tools`` run
``./do_content_packager.sh <model dir> <plaintext key> <key ID>``; the output appears in ``./<key ID>/`` (beside the
script), which is then moved to the destination the user chose.

The packager takes the key as a command-line argument (its documented interface): while it runs, the key is visible
in this machine's process list (``ps``) to users who can see other processes. Run it on the trusted machine the seed
asks for. The key never appears in this tool's output: everything the script prints passes through ``REDACTOR``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

from . import ActionError
from .model_encrypt import check_destination
from .model_manifest import MARKER_NAME

SDK_NAME = "RAI_SAM_SDK_2.1.0-20240731"
SDK_URL = f"https://pai-vision-data-hz.oss-cn-zhangjiakou.aliyuncs.com/rai/{SDK_NAME}.tgz"
SCRIPT = "do_content_packager.sh"
KEY_MIN, KEY_MAX = 4, 128
KEY_ID_MIN, KEY_ID_MAX = 8, 48
_KEY_CHARS = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces: it travels as one shell argument
_KEY_ID_CHARS = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # it becomes the output folder's name


def key_problems(key: bytes) -> list[str]:
    """Why ``key`` is not a valid Sam plaintext key (never echoes it)."""
    out = []
    if not KEY_MIN <= len(key) <= KEY_MAX:
        out.append(f"the Sam key must be {KEY_MIN}–{KEY_MAX} bytes; this one has {len(key)}")
    if not _KEY_CHARS.match(key.decode("latin-1")):
        out.append("the Sam key may hold letters, digits and punctuation only (no spaces, control or non-ASCII bytes)")
    return out


def key_id_problems(key_id: str) -> list[str]:
    out = []
    n = len(key_id.encode("utf-8"))
    if not KEY_ID_MIN <= n <= KEY_ID_MAX:
        out.append(f"--key-id must be {KEY_ID_MIN}–{KEY_ID_MAX} bytes (e.g. LD_Demo_0001); {key_id!r} has {n}")
    if not _KEY_ID_CHARS.match(key_id):
        out.append(
            f"--key-id {key_id!r}: use letters, digits, '_', '-' and '.' (not first); it names the output folder"
        )
    return out


def find_packager(sdk_dir: str) -> str:
    sdk = os.path.abspath(os.path.expanduser(sdk_dir))
    get = (
        f"download and unpack the SDK (CAI-1.6): `wget {SDK_URL} && tar xvf {SDK_NAME}.tgz`, then --sam-sdk {SDK_NAME}"
    )
    if not os.path.isdir(sdk):
        raise ActionError(f"--sam-sdk {sdk}: no such directory; {get}")
    script = os.path.join(sdk, "tools", SCRIPT)
    if not os.path.isfile(script):
        raise ActionError(f"--sam-sdk {sdk} has no tools/{SCRIPT}: point it at the unpacked {SDK_NAME} folder; {get}")
    if not os.access(script, os.X_OK):
        raise ActionError(f"{script} is not executable: `chmod +x {script}` (tar xvf keeps the mode)")
    return script


@dataclass
class SamResult:
    dst: str
    files: int
    bytes: int


def run_packager(
    sdk_dir: str, model_dir: str, key: bytes, key_id: str, dst: str, *, on_line: Callable[[str], None] | None = None
) -> SamResult:
    """Validate, run ``./do_content_packager.sh <model dir> <key> <key ID>`` in ``<sdk>/tools``, move ``./<key ID>/``
    to ``dst``. Raises :class:`ActionError` with a message that names the fix."""
    from ..recipe import REDACTOR

    problems = key_problems(key) + key_id_problems(key_id)
    if problems:
        raise ActionError("; ".join(problems))
    REDACTOR.add(key)
    script = find_packager(sdk_dir)
    tools = os.path.dirname(script)
    dst = os.path.abspath(dst)
    check_destination(dst)
    out = os.path.join(tools, key_id)
    if os.path.lexists(out):
        raise ActionError(f"{out} already exists (an earlier run?); move it away first so outputs do not mix")
    argv = ["./" + SCRIPT, os.path.abspath(model_dir), key.decode("latin-1"), key_id]
    tail: list[str] = []
    try:
        proc = subprocess.Popen(
            argv, cwd=tools, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                line = REDACTOR.redact(raw.decode("utf-8", "replace").rstrip("\n"))
                tail = [*tail[-4:], line]
                if on_line is not None:
                    on_line(line)
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    except BaseException as exc:
        _mark(out)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise ActionError(f"{SCRIPT} could not run: {exc}", 1) from None
    if rc != 0:
        _mark(out)
        left = f"; its partial output {out} is marked {MARKER_NAME}" if os.path.isdir(out) else ""
        raise ActionError(f"{SCRIPT} failed (exit {rc}): {' / '.join(tail[-2:]) or 'no output'}{left}", 1)
    if not os.path.isdir(out) or not os.listdir(out):
        raise ActionError(f"{SCRIPT} exited 0 but wrote nothing to ./{key_id}/ in {tools}", 1)
    if os.path.isdir(dst):
        os.rmdir(dst)
    shutil.move(out, dst)
    files = size = 0
    for dirpath, _, names in os.walk(dst):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return SamResult(dst, files, size)


def _mark(out: str) -> None:
    if os.path.isdir(out):
        with contextlib.suppress(OSError), open(os.path.join(out, MARKER_NAME), "w", encoding="utf-8") as f:
            f.write("Unfinished Sam packaging: NOT a usable model. Delete this folder and run again.\n")
