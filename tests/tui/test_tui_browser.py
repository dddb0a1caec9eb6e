"""Browser mode end to end: ``cai-tui serve`` in a subprocess, Debian's Chromium (headless, through Playwright) on the
page; the start screen must render in xterm.js and key presses must reach the wizard. Nothing leaves 127.0.0.1: every
other request the page makes is aborted.

The terminal draws on a canvas, so its text is read from xterm.js's own buffer: an init script catches the Terminal
object when textual-serve's page stores it (``this.terminal = new Terminal(…)``) and ``window.__screen()`` returns the
visible rows.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_lib import CHROMIUM, Served, describe, start_serve, wait_until

from cai_tui.stages import load_all
from cai_tui.tui.i18n import flow_title

CATCH_TERMINAL = """
window.__terms = [];
Object.defineProperty(Object.prototype, 'terminal', {
  configurable: true,
  set(value) {
    window.__terms.push(value);
    Object.defineProperty(this, 'terminal', {value, writable: true, configurable: true, enumerable: true});
  },
});
window.__screen = () => {
  const term = window.__terms.find((t) => t && t.buffer && t.buffer.active && t.rows);
  if (!term) return '';
  const buf = term.buffer.active, rows = [];
  for (let i = 0; i < term.rows; i++) {
    const line = buf.getLine(buf.viewportY + i);
    rows.push(line ? line.translateToString(true) : '');
  }
  return rows.join('\\n');
};
"""
LOOPBACK = ("127.0.0.1", "localhost")


def _require_browser() -> Any:
    """Playwright's sync API and Debian's chromium; fails (never skips) without them: scripts/test.sh installs both."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is missing: pip install -e '.[test]' (scripts/test.sh installs it)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (scripts/test.sh installs it)")
    return sync_playwright


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = start_serve(tmp_path)
    yield s
    if s.proc.poll() is None:
        s.stop()


@pytest.mark.slow  # about 30 s: Chromium's start and the page's first paint dominate
def test_served_wizard_renders_in_chromium_and_answers_keys(served: Served) -> None:
    sync_playwright = _require_browser()
    cai = load_all()["cai"]
    first_stage = cai.stages[0].title
    outside: list[str] = []

    def loopback_only(route: Any) -> None:
        host = urllib.parse.urlsplit(route.request.url).hostname
        if host in LOOPBACK:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
            env={**os.environ, "no_proxy": "*"},
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.route("**/*", loopback_only)
            page.add_init_script(CATCH_TERMINAL)
            page.goto(served.url + "/")

            def screen_shows(text: str, timeout_ms: float = 30_000) -> str:
                try:
                    page.wait_for_function("t => window.__screen().includes(t)", arg=text, timeout=timeout_ms)
                except Exception as e:
                    pytest.fail(
                        f"the page never showed {text!r} ({type(e).__name__})\nscreen:\n{page.evaluate('window.__screen()')}"
                        f"\nserver stderr:\n{served.stderr}"
                    )
                return str(page.evaluate("window.__screen()"))

            # the start screen, in English: both flows offered
            start = screen_shows(flow_title("cai", "en"))
            assert flow_title("kata-virtcca", "en") in start
            assert len(served.leftovers()) >= 2, "a wizard process runs for the tab, beside the server"

            page.focus(".xterm-helper-textarea")  # keys go to the terminal (a click would also click the wizard)
            page.keyboard.press("Control+l")  # language → 中文
            zh = screen_shows(flow_title("cai", "zh"))
            assert flow_title("cai", "en") not in zh

            page.keyboard.press("Enter")  # opens the highlighted flow (cai, the first)
            flow = screen_shows(first_stage.get("zh"))
            assert flow_title("kata-virtcca", "zh") not in flow  # the start screen's list is gone

            page.keyboard.press("Control+l")  # and back to English on the flow screen
            screen_shows(first_stage.get("en"))

            page.keyboard.press("q")  # quit: the wizard ends, the page says so
            page.get_by_text("Session ended.").wait_for(state="visible", timeout=20_000)
            server_pid = served.proc.pid
            assert wait_until(lambda: served.leftovers() == [server_pid], 15), describe(served.leftovers())
        finally:
            browser.close()
    assert served.stop() == 0, served.stderr
    assert "Traceback" not in served.stderr, served.stderr
    assert all("127.0.0.1" not in url for url in outside)  # only the outside was refused
