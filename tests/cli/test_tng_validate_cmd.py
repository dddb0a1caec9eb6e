"""``cai-tui tng validate FILE``: exit 0 valid, 2 invalid with each problem's JSON path and fix, and the judge named
(the real tng binary of the tng-sdk wheel for its own release, our models for another); a bad file is a clear
message with exit 2, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cai_tui.actions.tng_client import find_binary

GOOD = {
    "add_ingress": [
        {
            "http_proxy": {"proxy_listen": {"host": "127.0.0.1", "port": 41000}},
            "verify": {"as_addr": "http://127.0.0.1:9/as/", "policy_ids": ["default"]},
        }
    ]
}
BAD = {
    "add_ingress": [
        {"http_proxy": {"proxy_listen": {"port": 41000}}, "verfy": {"as_addr": "http://t/", "policy_ids": []}}
    ],
    "add_egress": [{"mapping": {"in": {"port": 1}, "out": {"host": "backend.local", "port": 2}}, "no_ra": True}],
}


@pytest.fixture(autouse=True)
def need_tng() -> None:
    if find_binary() is None:
        pytest.fail("the tng binary is missing: pip install 'cai-tui[tng]' (tng-sdk)")


def validate(tmp_path: Path, config: Any, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "tng.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config), "utf-8")
    return run(str(path), *args)


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cai_tui.cli.main", "tng", "validate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def test_valid_by_the_binary(tmp_path: Path) -> None:
    r = validate(tmp_path, GOOD)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "valid for TNG 2.12.0 (judged by the tng 2.12.0 binary (" in r.stdout
    # the AS is not reachable from the judge's empty network: a runtime error, named as such
    assert "error of this machine, not of the configuration" in r.stdout


def test_invalid_by_the_binary_names_paths_and_fixes(tmp_path: Path) -> None:
    r = validate(tmp_path, BAD)
    assert r.returncode == 2, r.stdout + r.stderr
    err = r.stderr
    assert "invalid for TNG 2.12.0 (judged by the tng 2.12.0 binary" in err
    assert "add_ingress[0].verfy: unknown field `verfy`" in err and "fix: remove it (or correct the spelling" in err
    assert "add_egress[0].mapping.out.host: 'backend.local' is not an IPv4 address" in err
    assert "tng refused it (parse error): unknown field `verfy`" in err
    assert "Traceback" not in err


def test_another_release_is_judged_by_the_models(tmp_path: Path) -> None:
    r = validate(tmp_path, GOOD, "--tng-version", "1.0.3")
    assert r.returncode == 0 and "judged by the models of TNG 1.0.3" in r.stdout, r.stdout + r.stderr
    assert "the installed tng is 2.12.0" in r.stdout
    # a hostname in mapping.out is fine for 1.0.3 (a string there); the typo is not
    r = validate(tmp_path, BAD, "--tng-version", "1.0.3")
    assert r.returncode == 2 and "judged by the models of TNG 1.0.3" in r.stderr
    assert "add_ingress[0].verfy: unknown field" in r.stderr and "backend.local" not in r.stderr
    r = validate(tmp_path, {"metric": {"exporters": []}}, "--tng-version", "1.0.6")
    assert r.returncode == 0, r.stderr


def test_judge_models_and_judge_binary(tmp_path: Path) -> None:
    r = validate(tmp_path, BAD, "--judge", "models")
    assert r.returncode == 2 and "judged by the models of TNG 2.8.0" in r.stderr
    assert "add_egress[0].mapping.out.host" in r.stderr
    r = validate(tmp_path, GOOD, "--judge", "binary", "--tng-version", "1.0.6")
    assert r.returncode == 1 and "the tng binary cannot judge TNG 1.0.6 here" in r.stderr, r.stderr


@pytest.mark.parametrize(
    "content,expected",
    [
        (None, "no such file"),
        ("{not json", ":1:2: not JSON (Expecting property name enclosed in double quotes)"),
    ],
)
def test_bad_file_is_a_clear_message(tmp_path: Path, content: str | None, expected: str) -> None:
    r = run(str(tmp_path / "missing.json")) if content is None else validate(tmp_path, content)
    assert r.returncode == 2, r.stdout + r.stderr
    assert expected in r.stderr and "Traceback" not in r.stderr


def test_unsupported_version_is_a_clear_message(tmp_path: Path) -> None:
    r = validate(tmp_path, GOOD, "--tng-version", "3.0.0")
    assert r.returncode == 2 and "TNG 3.0.0 is not supported here (supported: 1.0.x and 2.x)" in r.stderr
    assert "Traceback" not in r.stderr
