"""What Ansible gathers from each host: the facts of ``scripts/capture-machine.sh`` (the same commands as
:data:`cai_tui.bundle.facts.FACTS`, so :class:`~cai_tui.targets.capture.CaptureTarget` answers the checks from them),
run as one POSIX ``sh`` script (Ansible's ``script`` task: the host needs no Python) that prints every fact to
stdout between boundary lines; :func:`split_capture` turns that stream back into capture files."""

from __future__ import annotations

import secrets
import shlex
from pathlib import Path

from ..bundle.facts import FACTS
from ..targets.capture import CaptureStreamError, split_capture

__all__ = ["CaptureStreamError", "capture_script", "split_capture", "write_capture"]


def capture_script(boundary: str | None = None) -> tuple[str, str]:
    """(script text, boundary): each fact as ``<boundary> NAME`` then the capture file's text."""
    b = boundary or f"@@cai-tui-capture-{secrets.token_hex(8)}@@"
    lines = [
        "#!/bin/sh",
        "# cai-tui fleet capture: the facts cai-tui's checks read (scripts/capture-machine.sh's commands), to stdout.",
        "# It changes nothing on the host.",
        f"B={shlex.quote(b)}",
        # a missing tool reads as bash says it (capture-machine.sh runs under bash), not as the script's path
        'c() { n=$1; h=$2; shift 2; printf \'%s %s\\n\' "$B" "$n"; printf \'# $ %s\\n\' "$h";',
        '  if command -v "$1" >/dev/null 2>&1; then "$@" </dev/null 2>&1; r=$?;',
        '  else echo "$1: command not found"; r=127; fi; printf \'# rc=%s\\n\' "$r"; }',
    ]
    for name, argv in FACTS:
        lines.append(f"c {shlex.quote(name)} {shlex.quote(' '.join(argv))} {shlex.join(argv)}")
    lines += [
        "# per GPU (the gpu.cc_mode check asks each index), as capture-machine.sh does",
        "for i in $(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null); do",
        '  c "conf-compute-f-i$i" "nvidia-smi conf-compute -f -i $i" nvidia-smi conf-compute -f -i "$i"',
        "done",
        "exit 0",
        "",
    ]
    return "\n".join(lines), b


def write_capture(files: dict[str, str], directory: Path) -> Path:
    """The facts as ``NAME.txt`` files (a capture directory ``doctor --sysroot`` reads too)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / f"{name}.txt").write_text(text, encoding="utf-8")
    return directory
