"""The CLI renderer of events (cai_tui/cli/events_view.py): JSON lines that parse back into the same events, the
plain rendering without a terminal, the rich bar, Ctrl-C as a cancellation, and a real `cai-tui model encrypt`
child whose progress survives the pipe."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cai_tui import events as ev
from cai_tui.cli.events_view import EventsView, cancel_on_signals
from tests.helpers import REPO
from tests.model.modellib import build_model, passfile

SAMPLES = [
    ev.line("Container cai-oss-1  Started", stream="stderr", source="instance", step="compose-up"),
    ev.progress(3 << 20, 10 << 20, text="model-00001.safetensors", source="encrypt"),
    ev.progress(7, None, "files", source="upload", data={"files_done": 7, "files_total": 44}),
    ev.note("cai-oss-1: running", data={"container": "cai-oss-1", "state": "running"}),
    ev.note("disk almost full", level="warn"),
    ev.Event("step_finished", step="cai.model.encrypt", text="Encrypt the model", status="ok"),
    ev.Event("check", step="oss.model_prefix", status="fail", text="the marker is there"),
]


def test_json_lines_round_trip_through_parse_line(capsys: pytest.CaptureFixture[str]) -> None:
    with EventsView(json_mode=True) as view:
        for event in SAMPLES:
            view(event)
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert err == "" and len(lines) == len(SAMPLES)
    assert [ev.parse_line(text) for text in lines] == SAMPLES
    assert all("\n" not in text and json.loads(text)["schema"] == ev.SCHEMA for text in lines)


def test_json_mode_follows_the_environment(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(ev.EVENTS_ENV, "jsonl")
    EventsView()(SAMPLES[1])
    assert ev.parse_line(capsys.readouterr().out.strip()) == SAMPLES[1]
    monkeypatch.delenv(ev.EVENTS_ENV)
    EventsView(live=False)(SAMPLES[0])
    assert capsys.readouterr().out == "[instance] Container cai-oss-1  Started\n"


def test_secrets_never_leave_in_either_mode(capsys: pytest.CaptureFixture[str]) -> None:
    from cai_tui.recipe import REDACTOR

    secret = "s3cr3t-events-value-91"
    REDACTOR.add(secret)
    leaky = [ev.line(f"password={secret}", source="instance"), ev.note(f"using {secret}", data={"k": secret})]
    with EventsView(json_mode=True) as view:
        for event in leaky:
            view(event)
    with EventsView(json_mode=False, live=False) as view:
        for event in leaky:
            view(event)
    out, err = capsys.readouterr()
    assert secret not in out + err and out.count("\n") == 4


def test_plain_rendering_of_lines_notes_steps_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    with EventsView(json_mode=False, live=False) as view:
        for event in [SAMPLES[0], SAMPLES[3], SAMPLES[4], SAMPLES[5], SAMPLES[6], ev.line("no source")]:
            view(event)
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "[instance] Container cai-oss-1  Started",
        "→ cai-oss-1: running",
        "ok cai.model.encrypt: Encrypt the model",
        "fail oss.model_prefix: the marker is there",
        "no source",
    ]
    assert err == "warning: disk almost full\n"


def test_progress_without_a_terminal_is_a_line_every_few_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    view = EventsView(json_mode=False, live=False, interval=5.0, clock=lambda: now[0])
    total = 100 << 20
    for second in range(0, 21):  # 5 MiB a second
        now[0] = float(second)
        view(ev.progress(second * (5 << 20), total, text=f"shard-{second}", source="encrypt"))
    view(ev.progress(7, 7, "files", source="verify"))
    view.close()
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert lines[0] == "encrypt: 0 B of 100.0 MiB (0%), shard-0"
    assert lines[1] == "encrypt: 25.0 MiB of 100.0 MiB (25%), 5.0 MiB/s, ETA 0:15, shard-5"
    assert lines[3] == "encrypt: 75.0 MiB of 100.0 MiB (75%), 5.0 MiB/s, ETA 0:05, shard-15"
    assert lines[4] == "encrypt: 100.0 MiB of 100.0 MiB (100%), 5.0 MiB/s"  # the last one, whenever it comes
    assert lines[5] == "verify: 7 files of 7 files (100%)"
    assert len(lines) == 6


def test_the_rich_bar_shows_each_source(monkeypatch: pytest.CaptureFixture[str]) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)  # type: ignore[attr-defined]
    with EventsView(json_mode=False, live=True) as view:
        view(ev.progress(1 << 20, 4 << 20, text="a.bin", source="encrypt"))
        view(ev.progress(4 << 20, 4 << 20, text="b.bin", source="encrypt"))
        view(ev.progress(3, 9, "files", source="upload", data={"files_done": 3, "files_total": 9}))
    shown = buf.getvalue()
    assert "encrypt" in shown and "4.0/4.0 MiB" in shown and "b.bin" in shown
    assert "upload" in shown and "3/9 files" in shown


def test_first_signal_cancels_the_token_and_a_second_interrupts() -> None:
    token = ev.CancelToken()
    before = signal.getsignal(signal.SIGINT)
    with cancel_on_signals(token):
        os.kill(os.getpid(), signal.SIGTERM)
        assert token.wait(5) and "SIGTERM" in token.reason
        with pytest.raises(ev.Cancelled):
            token.check()
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
            token.wait(5)  # the handler raises in the main thread while it waits
            for _ in range(100):  # pragma: no cover - only reached when the signal comes late
                signal.sigtimedwait([], 0.05)
    assert signal.getsignal(signal.SIGINT) is before


def test_a_child_encrypt_reports_progress_as_json_lines(tmp_path: Path) -> None:
    """What the stage engine sees of a real `cai-tui model encrypt` run as its child."""
    model = build_model(tmp_path / "model", shard_sizes=(3 << 20, 1 << 20))
    pw = passfile(tmp_path / "pw")
    env = {**os.environ, ev.EVENTS_ENV: "jsonl"}
    argv = [sys.executable, "-m", "cai_tui.cli.main", "model", "encrypt", str(model), str(tmp_path / "cipher")]
    r = subprocess.run(
        [*argv, "--password-file", str(pw), "--workers", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    parsed: list[Any] = [ev.parse_line(text) for text in r.stdout.splitlines()]
    events = [e for e in parsed if e is not None]
    others = [text for text, e in zip(r.stdout.splitlines(), parsed, strict=True) if e is None]
    assert any(text.startswith("encrypted ") for text in others), others  # the result stays a plain line
    by_source: dict[str, list[ev.Event]] = {}
    for e in events:
        if e.kind == "progress":
            by_source.setdefault(e.source, []).append(e)
    assert set(by_source) == {"encrypt", "sha256"}
    for source, progress in by_source.items():
        done = [e.done for e in progress]
        assert all(e.total is not None and e.unit == "bytes" for e in progress), source
        assert done == sorted(done) and len(done) >= 4, (source, done)  # per MiB, not only at the end
        assert progress[-1].done == progress[-1].total, source
    assert by_source["sha256"][-1].total == sum(
        p.stat().st_size for p in model.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert "Traceback" not in r.stderr
