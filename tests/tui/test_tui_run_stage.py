"""Running a stage from the wizard against a bare lab (loopback Trustee/OSS/KMS, no Docker instance): the plan, the
confirmation, the same engine path as ``cai-tui replay``, the live log, a transfer's progress, Esc stopping a running
command (and the next run redoing it), a lab fault shown with its FAQ id, and a ``prompt`` secret asked in a dialog.

Real components only: the lab's servers, the child ``cai-tui`` commands the engine runs, real files and processes.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.message import Message
from textual.widgets import Input
from tui_testlib import texts

from cai_tui.lab.orchestrator import Lab
from cai_tui.tui import state as st
from cai_tui.tui.app import CaiTuiApp, make_app
from cai_tui.tui.screens.run_dialogs import ConfirmScreen, SecretPromptScreen
from cai_tui.tui.screens.run_stage import RunStageScreen
from cai_tui.tui.widgets.log_pane import LogPane
from tests.conftest import PROXY_VARS, loopback_env

SMALL = (80, 24)
MiB = 1 << 20


@pytest.fixture
def bare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    with Lab(state_dir=tmp_path / "lab-state", seed="bare") as lab:
        yield lab


async def open_stage(app: CaiTuiApp, pilot: Any, stage_id: str) -> RunStageScreen:
    await pilot.pause()
    stage = app.state.flows["cai"].stage(stage_id)
    await app.push_screen(RunStageScreen(stage))
    await pilot.pause()
    await app.workers.wait_for_complete()  # the plan's file diffs
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, RunStageScreen)
    return screen


async def apply(pilot: Any, screen: RunStageScreen) -> None:
    await pilot.press("a")
    await pilot.pause()
    assert isinstance(pilot.app.screen, ConfirmScreen)
    await pilot.press("y")
    await pilot.pause()


async def finish(pilot: Any, screen: RunStageScreen) -> None:
    await screen.workers.wait_for_complete()
    await pilot.pause(0.1)


def views(screen: RunStageScreen) -> dict[str, Any]:
    return {v.item.id: v for v in screen.plan_view.views()}


def result_text(screen: RunStageScreen) -> str:
    return str(screen.query_one("#run-result").content)


def replay_headless(recipe: Path, *args: str) -> None:
    cli = Path(os.sys.executable).parent / "cai-tui"  # type: ignore[attr-defined]
    r = subprocess.run([str(cli), "replay", str(recipe), "--yes", *args], capture_output=True, text=True,
                       env=loopback_env(), stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]


async def test_plan_then_apply_encrypts_the_model_with_its_log_and_progress(bare: Lab, tmp_path: Path) -> None:
    lab = bare
    messages: list[Message] = []
    app = make_app(recipe_path=lab.recipe_path, lab=lab)
    async with app.run_test(size=SMALL, message_hook=messages.append) as pilot:
        screen = await open_stage(app, pilot, "model-encrypt")
        # the plan: the engine's items, the headless command, what does not apply greyed with why, fields to fix
        assert [v.item for v in screen.plan_view.views()] == screen.items and screen.items
        assert app.state.replay_command("model-encrypt") in str(screen.query_one("#run-headless").content)
        plan_text = texts(screen.plan_view)
        assert "$ cai-tui model encrypt " in plan_text
        sam = [v for v in screen.plan_view.views() if not v.item.applies]
        assert sam and all(v.has_class("-not-applicable") for v in sam)
        assert "not for this recipe: CAI-1.6 is for sam" in plan_text
        assert "sam.sdk_dir" not in plan_text.replace("<UNSET:model.sam.sdk_dir>", ""), (
            "no fix asked for a step that does not apply"
        )
        assert "proved by: model.key_file" in plan_text
        assert app.state.stage_status("model-key") == st.NOT_STARTED, "planning changes nothing"

        # n at the confirmation changes nothing
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert app.screen is screen and screen.report is None and not screen.running
        assert not (lab.state_dir / "model-password").exists()

        await apply(pilot, screen)
        await finish(pilot, screen)
        report = screen.report
        assert report is not None and report.status == "ok", report and report.message
        assert app.state.stage_status("model-encrypt") == st.PASSED
        applied = {r.item.name for r in report.results if r.status == "applied"}
        assert {"model.create_key_file", "model.encrypt"} <= applied
        key = lab.state_dir / "model-password"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert (lab.state_dir / "demo-cipher" / "gocryptfs.conf").is_file()
        by_id = views(screen)
        for r in report.results:
            assert by_id[r.item.id].status == r.status, r.item.id
        assert "passed" in result_text(screen)

        # the log pane holds the engine's lines; the transfer bar showed the child's progress
        pane = screen.log_pane
        lines = pane.lines
        assert any(ln.startswith("▶ model-encrypt/CAI-1.5/action:model.encrypt") for ln in lines)
        assert any("check model.encrypted: pass" in ln for ln in lines)
        assert pane.dropped == 0 and pane.line_count == len(lines)
        transfer = screen.transfer
        assert transfer.has_class("-active") and transfer.last is not None and transfer.last.total
        # no secret value on screen or in the log; the saved log is redacted too (and atomic, 0600)
        password = key.read_text().splitlines()[0]
        assert password and all(password not in ln for ln in lines)
        pane.focus()
        await pilot.press("s")
        await pilot.pause()
        saved = [m for m in messages if isinstance(m, LogPane.Saved)]
        assert saved and saved[-1].path is not None
        path = saved[-1].path
        assert path.parent == app.state.files_dir and stat.S_IMODE(path.stat().st_mode) == 0o600
        text = path.read_text()
        assert password not in text and "check model.encrypted: pass" in text

        # back to where it was opened from
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, RunStageScreen)


async def test_a_lab_fault_fails_the_stage_with_its_faq_id(bare: Lab) -> None:
    lab = bare
    replay_headless(lab.recipe_path, "--only", "model-encrypt")
    lab.faults.set("oss-access-denied", True)
    app = make_app(recipe_path=lab.recipe_path, lab=lab)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_stage(app, pilot, "model-upload")
        plan_text = texts(screen.plan_view)
        assert "<UNSET:oss.upload_endpoint>" in plan_text and "fix the field answers.oss.upload_endpoint" in plan_text
        await apply(pilot, screen)
        await finish(pilot, screen)
        report = screen.report
        assert report is not None and report.status == "failed" and report.stopped_at == "model-upload"
        failed = [r for r in report.results if r.status == "failed"]
        assert [r.item.name for r in failed] == ["model.upload"] and failed[0].faq_id == "oss-access-denied"
        assert app.state.stage_status("model-upload") == st.FAILED
        shown = result_text(screen)
        assert "FAQ oss-access-denied" in shown and "Press t to troubleshoot" in shown
        assert "AccessDenied" in shown, "the evidence line is shown"
        view = views(screen)[failed[0].item.id]
        assert view.status == "failed" and view.faq_id == "oss-access-denied"
        assert any("AccessDenied" in ln for ln in screen.log_pane.lines), "the child's stderr reached the log"


def _children_running(needle: str) -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if needle in cmd and "encrypt" in cmd:
            out.append(int(pid))
    return out


def _big_safetensors(path: Path, n: int) -> None:
    """A valid safetensors file of ``n`` bytes of data, written in chunks (a model too big to encrypt in a blink)."""
    import struct

    header = json.dumps({"w": {"dtype": "U8", "shape": [n], "data_offsets": [0, n]}}).encode()
    header += b" " * (-len(header) % 8)
    chunk = os.urandom(8 * MiB)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        for _ in range(n // len(chunk)):
            f.write(chunk)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_escape_stops_a_running_encryption_and_the_next_run_redoes_it(bare: Lab, tmp_path: Path) -> None:
    from cai_tui.actions.model_manifest import MARKER_NAME
    from tests.model.modellib import SHARD1, build_model

    lab = bare
    big = build_model(tmp_path / "big-model")
    _big_safetensors(big / SHARD1, 768 * MiB)
    cipher = tmp_path / "big-cipher"
    text = lab.recipe_path.read_text()
    text = re.sub(r"(?m)^(\s+local_dir:).*$", rf"\1 {big}", text)
    text = re.sub(r"(?m)^(\s+cipher_dir:).*$", rf"\1 {cipher}", text)
    recipe = tmp_path / "big.yaml"
    recipe.write_text(text)

    app = make_app(recipe_path=recipe, lab=lab)
    async with app.run_test(size=SMALL) as pilot:
        screen = await open_stage(app, pilot, "model-encrypt")
        await apply(pilot, screen)
        for _ in range(600):  # until the child reports encryption progress
            await pilot.pause(0.05)
            last = screen.transfer.last
            if last is not None and last.source == "encrypt" and "/s" in screen.transfer.describe():
                break  # encrypting, and the bar has a rate
        else:
            pytest.fail(f"no encryption progress: {screen.log_pane.lines[-20:]}")
        assert screen.running and _children_running(str(cipher)), "the encryption runs as a child command"
        assert "ETA" in screen.transfer.describe() and "MiB" in screen.transfer.describe()
        await pilot.press("escape")
        await finish(pilot, screen)
        report = screen.report
        assert report is not None and report.status == "interrupted" and report.stopped_at == "model-encrypt"
        assert not screen.running
        encrypt = next(v for v in screen.plan_view.views() if v.item.name == "model.encrypt" and v.item.applies)
        assert encrypt.status == "interrupted"
        shown = result_text(screen)
        assert "Interrupted during model-encrypt/CAI-1.5/action:model.encrypt" in shown
        assert "--from model-encrypt" in shown and str(recipe) in shown
        # the key file was written in this run: the stage is left failed, not untouched
        assert app.state.stage_status("model-encrypt") == st.FAILED
        assert _children_running(str(cipher)) == [], "the command's process group was killed"
        assert (cipher / MARKER_NAME).exists() and not (cipher / "gocryptfs.conf").exists(), (
            "the cipher folder is marked unfinished, so no check takes it for done"
        )
        # the next run redoes it and passes
        await apply(pilot, screen)
        await finish(pilot, screen)
        assert screen.report is not None and screen.report.status == "ok", screen.report.message
        assert app.state.stage_status("model-encrypt") == st.PASSED
        assert not (cipher / MARKER_NAME).exists() and (cipher / "gocryptfs.conf").is_file()


@pytest.mark.slow
async def test_a_prompt_secret_is_asked_hidden_and_never_logged(bare: Lab, tmp_path: Path) -> None:
    lab = bare
    creds = json.loads(lab.credentials_path.read_text())
    value = creds["kms_access_key_secret"]
    text = re.sub(r"(?m)^(\s+access_key_secret:) file:\S+kms\S*$", r"\1 prompt", lab.recipe_path.read_text())
    assert text.count(": prompt") == 1
    recipe = tmp_path / "prompted.yaml"
    recipe.write_text(text)
    app = make_app(recipe_path=recipe, lab=lab)
    async with app.run_test(size=SMALL) as pilot:
        # a stage that does not take the KMS secret runs without asking it
        screen = await open_stage(app, pilot, "model-source")
        await apply(pilot, screen)
        assert not isinstance(app.screen, SecretPromptScreen)
        await finish(pilot, screen)
        assert screen.report is not None and screen.report.status == "ok", screen.report.message
        await pilot.press("escape")
        await pilot.pause()
        # the stage that takes it (model-key: the key into KMS; done headlessly with the file reference first, so its
        # guard — a check run in this process with the prompted value — proves it) asks first; declined: nothing runs
        replay_headless(lab.recipe_path, "--only", "model-encrypt,model-upload,model-key")
        screen = await open_stage(app, pilot, "model-key")
        await apply(pilot, screen)
        assert isinstance(app.screen, SecretPromptScreen)
        assert app.screen.query_one("#secret-value", Input).password
        await pilot.press("escape")
        await finish(pilot, screen)
        assert screen.report is None and "answers.kms.access_key_secret" in result_text(screen)
        assert "Nothing was changed" in result_text(screen)
        assert app.state.stage_status("model-key") == st.NOT_STARTED
        # given: the stage runs; the value is in no log line
        await apply(pilot, screen)
        assert isinstance(app.screen, SecretPromptScreen)
        app.screen.query_one("#secret-value", Input).value = value
        await pilot.press("enter")
        await finish(pilot, screen)
        assert screen.report is not None and screen.report.status == "ok", screen.report.message
        assert all(value not in ln for ln in screen.log_pane.lines)
        assert value not in screen.log_pane.text()
        # asked once per session: a second run does not ask again
        await apply(pilot, screen)
        assert not isinstance(app.screen, SecretPromptScreen)
        await finish(pilot, screen)
        assert screen.report is not None and screen.report.status == "ok"
