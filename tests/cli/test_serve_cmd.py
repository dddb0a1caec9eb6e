"""``cai-tui serve``: what it refuses (non-loopback addresses, bad ports, a port in use, a missing extra), and a real
server: the page and the websocket of textual-serve drive a real wizard process, and Ctrl-C closes it."""

from __future__ import annotations

import asyncio
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cai_tui.cli.serve_cmd import SHUTDOWN_TIMEOUT_S, wizard_command
from cai_tui.tui.i18n import flow_title
from tests.conftest import free_port_base, loopback_env
from tests.helpers import run_cli
from tests.tui.e2e_lib import describe, plain, start_serve, wait_until


def test_each_tab_runs_this_interpreter_with_the_same_options() -> None:
    recipe = Path("/srv/my recipes/lab demo.yaml")
    argv = shlex.split(wizard_command(recipe=recipe, lang="zh", lab=True))
    assert argv == [sys.executable, "-m", "cai_tui.cli.main", "--lab", "--recipe", str(recipe), "--lang", "zh"]
    assert shlex.split(wizard_command(recipe=None, lang="en", lab=False))[3:] == ["--lang", "en"]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _no_traceback(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("host", ["0.0.0.0", "::"])
def test_a_non_loopback_host_is_refused_without_allow_remote(host: str, tmp_path: Path) -> None:
    port = free_port_base(count=1)
    r = run_cli("serve", "--host", host, "--port", str(port), cwd=tmp_path, timeout=30)
    assert r.returncode == 2, r.stderr
    _no_traceback(r.stderr)
    assert f"--host {host}" in r.stderr
    assert "no authentication" in r.stderr
    assert f"ssh -L {port}:127.0.0.1:{port}" in r.stderr  # the way that is safe
    assert "--allow-remote" in r.stderr  # and the explicit way out
    assert r.stdout == ""  # never listened, never printed an address
    assert not _listening(port)


def test_an_unresolvable_host_is_refused(tmp_path: Path) -> None:
    r = run_cli("serve", "--host", "no-such-host.invalid", cwd=tmp_path, timeout=30)
    assert r.returncode == 2, r.stderr
    _no_traceback(r.stderr)
    assert "--host no-such-host.invalid" in r.stderr and "127.0.0.1" in r.stderr


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_a_bad_port_is_refused(port: str, tmp_path: Path) -> None:
    r = run_cli("serve", "--port", port, cwd=tmp_path, timeout=30)
    assert r.returncode == 2, r.stderr
    _no_traceback(r.stderr)
    assert "--port" in r.stderr
    assert r.stdout == ""


def test_a_port_in_use_is_refused_with_its_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = run_cli("serve", "--port", str(port), cwd=tmp_path, timeout=30)
    assert r.returncode == 2, r.stderr
    _no_traceback(r.stderr)
    assert f"--port {port}" in r.stderr and "127.0.0.1" in r.stderr
    assert "Another program uses that port" in r.stderr and "--port" in r.stderr
    assert "the wizard is at" not in r.stdout


def test_bad_language_and_bad_recipe_are_refused_before_serving(tmp_path: Path) -> None:
    r = run_cli("serve", "--lang", "fr", cwd=tmp_path, timeout=30)
    assert r.returncode == 2 and "--lang" in r.stderr and "en or zh" in r.stderr, r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("flow: cai\nname: [unclosed\n", encoding="utf-8")
    r = run_cli("serve", "--recipe", str(bad), cwd=tmp_path, timeout=30)
    assert r.returncode == 2, r.stderr
    _no_traceback(r.stderr)
    assert "bad.yaml" in r.stderr
    assert r.stdout == ""


def test_without_textual_serve_the_extra_is_named(tmp_path: Path) -> None:
    """An environment without the web extra: the import fails (None in sys.modules makes it fail as if absent)."""
    code = (
        "import sys\nsys.modules['textual_serve'] = None\nsys.modules['textual_serve.server'] = None\n"
        "from cai_tui.cli.main import main\nsys.exit(main(['serve', '--port', '0']))\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=loopback_env(), cwd=tmp_path, timeout=30
    )
    assert r.returncode == 2, r.stderr
    _no_traceback(r.stderr)
    assert "pip install 'cai-tui[web]'" in r.stderr
    assert r.stdout == ""


def test_allow_remote_listens_and_warns_loudly(tmp_path: Path) -> None:
    served = start_serve(tmp_path, "--host", "0.0.0.0", "--allow-remote")
    try:
        port = int(served.url.rsplit(":", 1)[1])
        assert _listening(port)
        assert wait_until(lambda: "WARNING" in served.stderr, 5), served.stderr
        assert "WITHOUT AUTHENTICATION" in served.stderr and "ssh -L" in served.stderr
    finally:
        assert served.stop() == 0, served.stderr


def test_serves_the_wizard_and_ctrl_c_stops_it_and_its_wizards(tmp_path: Path) -> None:
    served = start_serve(tmp_path, "--lang", "zh")
    try:
        assert served.url.startswith("http://127.0.0.1:")
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(served.url + "/", timeout=10) as page:
            html = page.read().decode("utf-8")
        assert served.url.replace("http://", "ws://") + "/ws" in html  # the page talks back to this very server
        assert "googleapis" not in html and "https://" not in html  # no other host (textual-serve links web fonts)

        t_sent = [0.0]

        async def open_tab_then_interrupt() -> str:
            """A tab that stays open (its wizard running) while the server gets Ctrl-C."""
            import aiohttp

            async with aiohttp.ClientSession(trust_env=False) as session:
                ws = await session.ws_connect(served.url.replace("http://", "ws://") + "/ws?width=80&height=24")
                seen = ""
                deadline = time.monotonic() + 30
                while flow_title("cai", "zh") not in plain(seen) and time.monotonic() < deadline:
                    msg = await ws.receive(timeout=30)
                    if msg.type != aiohttp.WSMsgType.BINARY:
                        break
                    seen += msg.data.decode("utf-8", "replace")
                assert served.leftovers(), "no wizard process was started for the tab"
                served.proc.send_signal(2)
                t_sent[0] = time.monotonic()
                while not ws.closed:  # the server closes the tab's websocket on its way out
                    if (await ws.receive(timeout=30)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
                        break
                return plain(seen)

        screen = asyncio.run(open_tab_then_interrupt())
        assert flow_title("cai", "zh") in screen  # --lang reached the served wizard
        assert flow_title("kata-virtcca", "zh") in screen
        rc = served.proc.wait(timeout=30)  # the first Ctrl-C is enough
        stop_s = time.monotonic() - t_sent[0]
    finally:
        if served.proc.poll() is None:
            served.stop()
    assert rc == 0, served.stderr
    assert served.proc.stdout is not None and "stopping" in served.proc.stdout.read()
    # the open tab's wizard was told to quit at once, not left until aiohttp's shutdown timeout cancelled it
    assert stop_s < SHUTDOWN_TIMEOUT_S / 2, f"stopping took {stop_s:.1f} s"
    _no_traceback(served.stderr)
    assert wait_until(lambda: not served.leftovers(), 10), f"left running:\n{describe(served.leftovers())}"
