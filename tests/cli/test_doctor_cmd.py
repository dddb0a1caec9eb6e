"""``cai-tui doctor`` as a user runs it (issue 15): nothing checkable exits 2 saying what to give; a required check
that could not be judged fails the run unless waived; results are printed as they land, in stage order (on a terminal
and in a pipe); ``--lang en|zh``. The JSON document, fault matrix and usage errors: tests/checks/test_doctor.py."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from cai_tui.checks.base import Result
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome
from cai_tui.cli.doctor_output import LivePrinter
from cai_tui.engine.session import doctor_verdict
from tests.checks.checklib import assert_no_secrets, lab_secrets, write_recipe
from tests.conftest import loopback_env
from tests.helpers import REPO, run_cli

from .ptyterm import Term

SAMPLE = REPO / "recipes" / "cai-qwen2.5-3b-beijing.yaml"
UNKNOWN_TAIL = "required check(s) unknown — required checks that could not be judged count as failures"


def doctor(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return run_cli("doctor", *args, env=loopback_env(), timeout=timeout)


def last_line(out: str) -> str:
    return [ln for ln in out.splitlines() if ln.strip()][-1].strip()


# --------------------------------------------------------------------------------------------- nothing checkable


def test_nothing_checkable_exits_2_and_says_what_to_give() -> None:
    r = doctor()
    assert r.returncode == 2, r.stdout + r.stderr
    assert re.fullmatch(r"\d+ skip — nothing was checked", last_line(r.stdout)), r.stdout[-500:]
    err = r.stderr
    assert re.search(r"nothing was checked — all \d+ check\(s\) were skipped", err), err
    for option in ("--recipe RECIPE", "--target URI", "--sysroot DIR", "--hosts INVENTORY"):
        assert option in err, err
    assert "Traceback" not in err

    j = doctor("--json")
    assert j.returncode == 2, j.stderr
    doc = json.loads(j.stdout)
    assert doc["verdict"] == {"state": "nothing-checked", "exit_code": 2, "failed": [], "unknown": []}
    assert doc["checks"] and {c["status"] for c in doc["checks"]} == {"skip"}
    assert "--recipe RECIPE" in j.stderr


def test_a_recipe_without_the_target_its_checks_need_names_the_target() -> None:
    """With a recipe, the message asks only for what is missing, and gives the checks' own reasons."""
    r = doctor("--recipe", str(SAMPLE), "--only", "model.mounted")
    assert r.returncode == 2, r.stdout + r.stderr
    assert last_line(r.stdout) == "1 skip — nothing was checked"
    assert "--recipe RECIPE" not in r.stderr and "--target URI" in r.stderr
    assert "why they were skipped: runs inside the instance; no target given (--target ssh://…)" in r.stderr


# --------------------------------------------------------------------------------------------- unknown fails the run


def _mistyped_secret(lab: Any, tmp_path: Path, waive: bool = False) -> Path:
    def edit(d: dict[str, Any]) -> None:
        d["answers"]["kms"]["access_key_secret"] = str(d["answers"]["kms"]["access_key_secret"]) + "-typo"
        if waive:
            d["waivers"] = [{"check": "kms.secret_*", "reason": "KMS is checked by the platform team"}]

    return write_recipe(lab, tmp_path / ("waived.yaml" if waive else "typo.yaml"), edit)


def test_a_required_check_left_unknown_fails_unless_waived(lab: Any, tmp_path: Path) -> None:
    recipe = _mistyped_secret(lab, tmp_path)
    j = doctor("--recipe", str(recipe), "--only", "kms.secret_exists", "--json", "--timeout", "5")
    assert j.returncode == 1, j.stdout + j.stderr
    doc = json.loads(j.stdout)
    check = {c["id"]: c for c in doc["checks"]}["kms.secret_exists"]
    assert check["status"] == "unknown" and check["required"] is True, check
    assert "kms_access_key_secret-typo" in check["summary"], check  # it names the file that is not there
    assert doc["verdict"] == {"state": "fail", "exit_code": 1, "failed": [], "unknown": ["kms.secret_exists"]}

    human = doctor("--recipe", str(recipe), "--only", "kms.secret_exists", "--timeout", "5")
    assert human.returncode == 1, human.stdout + human.stderr
    assert re.search(r"^\?\s+kms\.secret_exists\s", human.stdout, re.M), human.stdout
    assert last_line(human.stdout) == f"1 unknown — 1 {UNKNOWN_TAIL}"

    waived = _mistyped_secret(lab, tmp_path, waive=True)
    w = doctor("--recipe", str(waived), "--only", "kms.secret_exists", "--json", "--timeout", "5")
    assert w.returncode == 0, w.stdout + w.stderr
    doc = json.loads(w.stdout)
    assert doc["verdict"]["state"] == "pass"
    assert doc["checks"][0]["waived"] == "KMS is checked by the platform team"
    hw = doctor("--recipe", str(waived), "--only", "kms.secret_exists", "--timeout", "5")
    assert hw.returncode == 0 and "waived: KMS is checked by the platform team" in hw.stdout, hw.stdout
    assert last_line(hw.stdout) == "1 unknown — no required check failed"
    assert_no_secrets(j.stdout + human.stdout + w.stdout + hw.stdout, lab_secrets(lab))


# --------------------------------------------------------------------------------------------- results as they land

HANG_TIMEOUT = 12  # the Trustee checks wait 0.6 of it (7.2 s) for an answer that never comes
HUNG = re.compile(r"^[✗?]\s+trustee\.auth_nonce\s", re.M)
FIRST = re.compile(r"^✓\s+model\.local_dir\s", re.M)
LATER = re.compile(r"^✓\s+kms\.secret_exists\s", re.M)  # stage 07, after the Trustee's 06


def _read_lines(proc: subprocess.Popen[str]) -> list[tuple[float, str]]:
    got: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:  # line by line, as the child writes them
        got.append((time.monotonic(), line))
    return got


def test_results_are_printed_as_they_land_in_a_pipe_and_on_a_terminal(lab: Any) -> None:
    """A hung Trustee: the stage before it is printed while it still hangs, the stage after it once it is done.
    Buffering the output to the end would print everything at once and fail the timing."""
    lab.faults.set("trustee-hang", True)
    only = "model.local_dir,trustee.auth_nonce,kms.secret_exists"
    args = ["doctor", "--recipe", str(lab.recipe_path), "--only", only, "--timeout", str(HANG_TIMEOUT)]

    start = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "cai_tui.cli.main", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, **loopback_env()},
    )  # fmt: skip
    box: list[list[tuple[float, str]]] = []
    reader = threading.Thread(target=lambda: box.append(_read_lines(proc)))
    reader.start()
    assert proc.wait(timeout=90) == 1  # the Trustee did not answer: the run fails
    reader.join(timeout=10)
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    lines = box[0]
    text = "".join(ln for _, ln in lines)

    def when(pattern: re.Pattern[str]) -> float:
        return next((t for t, ln in lines if pattern.search(ln)), -1.0)

    first, hung, later = when(FIRST), when(HUNG), when(LATER)
    assert min(first, hung, later) > 0, text
    assert hung - start >= 7.0, text  # it did hang
    assert hung - first >= 3.0, (first - start, hung - start, text)  # the first result did not wait for the hung one
    assert later >= hung, text  # stage order: a later stage's result (landed long before) comes after it
    headings = re.findall(r"^(\d\d) [a-z-]+ — ", text, re.M)
    assert headings == ["01", "06", "07"], text
    assert re.fullmatch(r"3 pass, 1 (fail|unknown) — .*", lines[-1][1].strip()), lines[-1]

    term = Term(args, cwd=REPO, env=loopback_env(), cols=120)
    try:
        start = time.monotonic()
        term.wait(lambda: bool(FIRST.search(term.text())), timeout=60)
        first = time.monotonic()
        assert not HUNG.search(term.text()) and term.proc.poll() is None, term.text()
        term.wait(lambda: bool(HUNG.search(term.text())), timeout=60)
        hung = time.monotonic()
        assert term.finish() == 1
    finally:
        term.close()
    assert hung - start >= 7.0 and hung - first >= 3.0, (first - start, hung - start)
    assert LATER.search(term.text()) and re.search(r"^3 pass, 1 (fail|unknown) — ", term.text(), re.M), term.text()


def _outcome(cid: str, status: str = "pass") -> CheckOutcome:
    return CheckOutcome(all_checks()[cid], Result(status, f"{cid} {status}"), 1, "local")  # type: ignore[arg-type]


def test_a_result_waits_only_for_those_before_it_in_stage_order() -> None:
    """The printer as the runner drives it: each land() writes (and flushes) what is ready, nothing else."""
    ids = ["trustee.url", "oss.endpoint", "model.local_dir"]  # stages 06, 03, 01 of the cai flow
    out = io.StringIO()
    printer = LivePrinter(
        [all_checks()[i] for i in ids], flow="cai", target_names={}, waiver=lambda _cid: None, out=out
    )
    printer.land(_outcome("trustee.url"))
    printer.land(_outcome("oss.endpoint"))
    assert out.getvalue() == ""  # model.local_dir (stage 01) has not landed: nothing may go before it
    printer.land(_outcome("model.local_dir"))
    text = out.getvalue()
    assert text.index("model.local_dir") < text.index("oss.endpoint") < text.index("trustee.url"), text
    assert text.index("01 model-source") < text.index("03 model-upload") < text.index("06 trustee-deploy"), text

    out = io.StringIO()
    printer = LivePrinter(
        [all_checks()[i] for i in ids], flow="cai", target_names={}, waiver=lambda _cid: None, out=out
    )
    printer.land(_outcome("model.local_dir"))
    assert "✓" in out.getvalue() and "model.local_dir" in out.getvalue()  # first in order: printed at once
    printer.land(_outcome("trustee.url", "unknown"))
    assert "trustee.url" not in out.getvalue()
    printer.land(_outcome("oss.endpoint"))
    outcomes = [_outcome(i) for i in ("model.local_dir", "oss.endpoint")] + [_outcome("trustee.url", "unknown")]
    printer.summary(outcomes, doctor_verdict(outcomes, {}))
    assert last_line(out.getvalue()) == f"2 pass, 1 unknown — 1 {UNKNOWN_TAIL}"


# --------------------------------------------------------------------------------------------- --lang


def test_lang_zh_translates_stage_titles_fixes_and_the_summary(lab: Any) -> None:
    from cai_tui.faq.kb import default_kb
    from cai_tui.stages import load_all

    lab.faults.set("oss-access-denied", True)
    r = doctor("--recipe", str(lab.recipe_path), "--only", "oss.bucket", "--lang", "zh", "--timeout", "5")
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout
    title = next(s.title.zh for s in load_all()["cai"].stages if s.id == "model-upload")
    assert f"03 model-upload — {title}" in out, out
    fix_zh = default_kb().get("oss-access-denied").fix.zh
    flat = re.sub(r"\s+", "", out)  # the fix wraps inside its column
    assert re.sub(r"\s+", "", "修复 [oss-access-denied]：" + fix_zh) in flat, out
    assert "证据：HTTP 403 AccessDenied" in out, out
    assert last_line(out) == "通过 2，失败 1——1 项必需检查失败"

    en = doctor("--recipe", str(lab.recipe_path), "--only", "oss.bucket", "--lang", "en", "--timeout", "5")
    assert en.returncode == 1 and last_line(en.stdout) == "2 pass, 1 fail — 1 required check(s) failed"
    assert "fix [oss-access-denied]:" in en.stdout and "修复" not in en.stdout


def test_lang_zh_without_a_lab_and_a_bad_lang() -> None:
    r = doctor("--lang", "zh")
    assert r.returncode == 2
    assert re.fullmatch(r"跳过 \d+——没有检查任何内容", last_line(r.stdout)), r.stdout[-300:]
    assert "--recipe 配方文件" in r.stderr
    bad = doctor("--lang", "fr")
    assert bad.returncode == 2 and "cai-tui doctor: --lang fr: en or zh" in bad.stderr and bad.stdout == ""
    assert "--lang" in run_cli("doctor", "--help").stdout
