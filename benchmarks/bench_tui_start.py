"""Cold start of the wizard to its first painted screen, side by side with a bare Textual app.

Each run is a fresh interpreter on a real pseudo-terminal (80×24), so the terminal driver, the stylesheets and
the first frame written to the terminal all count. Both programs get the same tiny hook: the first time the app
writes a frame of a screen that holds a Footer, the child notes ``time.monotonic()`` and exits; the parent took
``time.monotonic()`` just before spawning it (one clock for both processes on Linux), so the figure is
spawn → first painted screen, without the exit.

- ``cai-tui``: the console script's own path (``cai_tui.cli.main.main()`` with no arguments → the start screen).
- ``bare textual``: an App of Header, Static and Footer.

Runs alternate (cai-tui, bare, cai-tui, bare, …) so machine noise hits both alike; medians and the ratio are
printed, and a JSON line last. The goal is a ratio ≤ 1.5.

Run: .venv/bin/python benchmarks/bench_tui_start.py [--runs 15]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

# Installed in the child before anything else; notes the first frame of a screen with a Footer, then exits.
HOOK = """
import os, time
import textual.app as _ta
from textual.widgets import Footer as _Footer
_orig = _ta.App._display
_done = []
def _display(self, screen, renderable):
    _orig(self, screen, renderable)
    if renderable is not None and not _done and screen.query(_Footer):
        _done.append(time.monotonic())
        with open(os.environ["BENCH_MARK_FILE"], "w") as f:
            f.write(repr(_done[0]))
        self.exit()
_ta.App._display = _display
"""

CAI = HOOK + "import sys\nsys.argv = ['cai-tui']\nfrom cai_tui.cli.main import main\nsys.exit(main())\n"

BARE = (
    HOOK
    + """
from textual.app import App
from textual.widgets import Header, Static, Footer
class Bare(App):
    def compose(self):
        yield Header()
        yield Static("Hello")
        yield Footer()
Bare().run()
"""
)

PROGRAMS = {"cai-tui": CAI, "bare textual": BARE}


def one_run(code: str, home: Path, size: tuple[int, int] = (80, 24)) -> float:
    """Seconds from spawn to the first painted screen of ``code`` run on a fresh pty."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    drained = threading.Thread(target=_drain, args=(master,), daemon=True)
    drained.start()
    with tempfile.NamedTemporaryFile("r", suffix=".mark", delete=False) as mark:
        mark_path = mark.name
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTUAL")}
    env.update(
        TERM="xterm-256color",
        COLORTERM="truecolor",
        CAI_TUI_HOME=str(home),
        BENCH_MARK_FILE=mark_path,
        COLUMNS=str(size[0]),
        LINES=str(size[1]),
    )
    env.pop("NO_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # an installed program runs from its bytecode cache
    try:
        start = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        rc = proc.wait(timeout=60)
        os.close(slave)
        drained.join(timeout=5)
        text = Path(mark_path).read_text()
        if not text:
            raise RuntimeError(f"the child exited {rc} before painting a screen")
        return float(text) - start
    finally:
        os.unlink(mark_path)
        try:
            os.close(master)
        except OSError:
            pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    times: dict[str, list[float]] = {name: [] for name in PROGRAMS}
    with tempfile.TemporaryDirectory(prefix="cai-tui-bench-") as home:
        for code in PROGRAMS.values():
            one_run(code, Path(home))  # warm the page cache and write the bytecode caches
        for _ in range(args.runs):
            for name, code in PROGRAMS.items():
                times[name].append(one_run(code, Path(home)))
    medians = {name: statistics.median(v) for name, v in times.items()}
    ratio = medians["cai-tui"] / medians["bare textual"]
    print(
        f"{'program':<14} {'median s':>9} {'min s':>7} {'max s':>7}   ({args.runs} runs each, alternating, 80×24 pty)"
    )
    for name, v in times.items():
        print(f"{name:<14} {medians[name]:9.3f} {min(v):7.3f} {max(v):7.3f}")
    print(f"cai-tui / bare textual = {ratio:.2f}× (goal ≤ 1.5× → {'met' if ratio <= 1.5 else 'NOT met'})")
    print(json.dumps({"bench": "tui_start", "median_s": medians, "ratio": ratio, "runs": args.runs}))


if __name__ == "__main__":
    main()
