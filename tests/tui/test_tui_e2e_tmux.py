"""The installed ``cai-tui --lab`` in a real terminal (tmux), driven by keys as a user would: open the CAI flow, move
between stages, switch the language, go back, quit — at 120×40 and at 80×24. After quit the lab is gone: the process
exited 0, nothing that carries this run's ``CAI_TUI_HOME`` still runs, the lab's ports are closed, no container or
mount of its state directory is left.

Assertions use texts that other work on the screens does not move: flow titles, stage titles from ``screens/*.yaml``,
the footer's key labels.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_lib import describe, installed_cai_tui, pids_with_env, require_tool, wait_until

from cai_tui.stages import load_all
from cai_tui.stages.spec import StageSpec
from cai_tui.tui.i18n import flow_title, t
from tests.conftest import PROXY_VARS

LAB_START_S = 240  # a fresh CI machine builds the lab instance's image first


class Tmux:
    """One private tmux server (its own socket) with one session running the wizard; the pane stays after exit."""

    def __init__(self, tmp_path: Path, width: int, height: int) -> None:
        self.tmux = require_tool("tmux", "apt-get install -y tmux")
        self.socket = f"cai-tui-e2e-{uuid.uuid4().hex[:8]}"
        self.conf = tmp_path / "tmux.conf"
        self.conf.write_text("set -g remain-on-exit on\nset -g status off\nset -g history-limit 2000\n", "utf-8")
        self.size = (width, height)
        # the server's own environment has no CAI_TUI_HOME: only the wizard's pane gets it (-e), so the processes
        # of this run are exactly those that carry it
        self.env = {k: v for k, v in os.environ.items() if k not in (*PROXY_VARS, "CAI_TUI_HOME", "TMUX")}

    def run(self, *args: str, check: bool = True) -> str:
        r = subprocess.run(
            [self.tmux, "-L", self.socket, "-f", str(self.conf), *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=30,
        )
        if check and r.returncode != 0:
            pytest.fail(f"tmux {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r.stdout

    def start(self, command: list[str], env: dict[str, str]) -> None:
        width, height = self.size
        extra = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        self.run("new-session", "-d", "-s", "wiz", "-x", str(width), "-y", str(height), *extra, *command)

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", "wiz")

    def history(self) -> str:
        """Everything the pane printed, scrolled-off lines included (what the wizard wrote after leaving its screen)."""
        return self.run("capture-pane", "-p", "-J", "-S", "-", "-t", "wiz")

    def keys(self, *keys: str) -> None:
        self.run("send-keys", "-t", "wiz", *keys)

    def pane_exit(self) -> int | None:
        """The wizard's exit status once its pane is dead, else None."""
        dead, _, status = self.run("display-message", "-p", "-t", "wiz", "#{pane_dead} #{pane_dead_status}").partition(
            " "
        )
        return int(status) if dead.strip() == "1" and status.strip() else None

    def close(self) -> None:
        """Stop a wizard still running (a failed test) the way Ctrl-C would, so its lab unmounts and stops; then the
        server. Killing the server first would hang the wizard up without its clean-up."""
        if self.pane_exit() is None:
            pid = self.run("display-message", "-p", "-t", "wiz", "#{pane_pid}", check=False).strip()
            if pid.isdigit():
                try:
                    os.kill(int(pid), signal.SIGINT)
                except ProcessLookupError:
                    pass
                wait_until(lambda: self.pane_exit() is not None, 120, interval=0.5)
        self.run("kill-server", check=False)


def head(title: str, width: int = 24) -> str:
    """The start of a title, short enough to stay on one line of an 80-column list (longer ones wrap)."""
    return title if len(title) <= width else title[:width].rsplit(" ", 1)[0]


def inner_covers(stage: StageSpec) -> list[str]:
    """The documented step ids of a stage other than its first and last (the stage list shows only those two)."""
    return list(stage.covers[1:-1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _lab_ports(credentials: Path) -> dict[str, int]:
    doc = json.loads(credentials.read_text("utf-8"))
    ports: dict[str, int] = {}
    for key in ("trustee_url", "oss_endpoint", "kms_endpoint"):
        value = str(doc[key])
        url = urllib.parse.urlsplit(value if "://" in value else f"http://{value}")
        assert url.hostname == "127.0.0.1" and url.port, (key, value)
        ports[key] = url.port
    return ports


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def tmux_factory(tmp_path: Path) -> Iterator[list[Tmux]]:
    made: list[Tmux] = []
    yield made
    for mux in made:
        mux.close()


@pytest.mark.slow
@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
def test_installed_wizard_with_lab_in_tmux(
    size: tuple[int, int], tmp_path: Path, home: Path, tmux_factory: list[Tmux]
) -> None:
    exe = installed_cai_tui()
    stages = load_all()["cai"].stages
    first, second = stages[0], stages[1]
    assert inner_covers(first) and inner_covers(second), "stages 1 and 2 must list 3 or more ids each"
    mux = Tmux(tmp_path, *size)
    tmux_factory.append(mux)
    mux.start([str(exe), "--lab"], {"CAI_TUI_HOME": str(home)})

    def shows(what: str, check: object = None, timeout: float = 15) -> str:
        """Wait until the screen holds ``what`` (and ``check(screen)`` is true); fail with the screen otherwise."""
        seen = [""]

        def ok() -> bool:
            seen[0] = mux.screen()
            return what in seen[0] and (check is None or bool(check(seen[0])))  # type: ignore[operator]

        if not wait_until(ok, timeout, interval=0.25):
            pytest.fail(f"the terminal ({size[0]}x{size[1]}) never showed {what!r}; it shows:\n{seen[0]}")
        return seen[0]

    def on_stage(stage: StageSpec, other: StageSpec, lang: str) -> str:
        """The detail shows ``stage``: its title and the CAI ids only its detail lists (the list names each stage's
        first and last id only), none of ``other``'s; robust to titles wrapping in a narrow stage list."""
        mine, theirs = inner_covers(stage), inner_covers(other)

        def ok(screen: str) -> bool:
            return all(c in screen for c in mine) and not any(c in screen for c in theirs)

        return shows(head(stage.title.get(lang), 12), ok)

    # the start screen, once the lab runs: the lab's banner and both flows
    start = shows(head(flow_title("cai", "en")), timeout=LAB_START_S)
    assert head(flow_title("kata-virtcca", "en")) in start
    credentials = home / "state" / "lab" / "credentials.json"
    assert credentials.is_file(), "the lab did not write its state under CAI_TUI_HOME"
    ports = _lab_ports(credentials)
    assert all(_listening(p) for p in ports.values()), ports
    running = pids_with_env("CAI_TUI_HOME", str(home))
    assert running, "no process of this run found (the check below would prove nothing)"

    # Enter opens the CAI flow on its first stage; n and p move between stages
    mux.keys("Enter")
    on_stage(first, second, "en")
    mux.keys("n")
    on_stage(second, first, "en")
    mux.keys("p")
    on_stage(first, second, "en")

    # Ctrl-L: the stage and its list in Chinese (the footer offers the way back: "English"); again: English
    mux.keys("C-l")
    zh = on_stage(first, second, "zh")
    assert second.title.get("zh") in zh and first.title.get("en") not in zh
    if size[0] >= 120:  # at 80 columns the flow screen's footer has no room left for the language key
        assert t("lang", "zh") in zh
    mux.keys("C-l")
    on_stage(first, second, "en")

    # Esc back to the start screen, q quits
    mux.keys("Escape")
    shows(head(flow_title("cai", "en")), lambda s: not any(c in s for c in inner_covers(first)))
    mux.keys("q")
    if not wait_until(lambda: mux.pane_exit() is not None, 120, interval=0.5):
        pytest.fail(f"the wizard did not exit after q; the terminal shows:\n{mux.screen()}")
    status = mux.pane_exit()
    assert status == 0, f"the wizard exited {status}; the terminal shows:\n{mux.history()}"
    said = [line for line in mux.history().splitlines() if line.startswith("lab ")]
    assert said and said[-1].startswith("lab stopped"), said  # not a "lab running: …" left as the last word

    # the lab went with it
    assert wait_until(lambda: not pids_with_env("CAI_TUI_HOME", str(home)), 10), describe(
        pids_with_env("CAI_TUI_HOME", str(home))
    )
    assert not [name for name, port in ports.items() if _listening(port)], ports
    from cai_tui.labstack.instance import project_name

    project = project_name(home / "state" / "lab")
    r = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0 and r.stdout.strip() == "", (project, r.stdout, r.stderr)
    mounts = Path("/proc/self/mounts").read_text("utf-8")
    assert str(home) not in mounts
