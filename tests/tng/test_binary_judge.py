"""The real tng 2.12 binary as the judge (parse and checks only, no network): a parse error, a refused configuration
rule and this machine's runtime error are told apart; nothing it started is left running; and our models give the
same verdict as the binary on forms the docs do not cover."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cai_tui.actions.tng_client import find_binary
from cai_tui.tng.binary_judge import _error_chain, judge, run_once, sandbox
from cai_tui.tng.schema import problems

MAP = {"in": {"port": 10001}, "out": {"host": "127.0.0.1", "port": 20001}}
VERIFY = {"as_addr": "http://127.0.0.1:9/", "policy_ids": ["default"]}
AA = {"aa_addr": "unix:///run/cai-test-no-such-dir/aa.sock"}


@pytest.fixture(scope="module")
def binary() -> str:
    found = find_binary()
    if found is None:
        pytest.fail("the tng binary is missing: pip install 'cai-tui[tng]' (tng-sdk)")
    if sandbox() is None:
        pytest.fail("no network namespace can be made here (unshare --net as root, or user namespaces)")
    return found


def test_parse_error_is_a_refusal_at_parse(binary: str) -> None:
    run = run_once(binary, {"add_ingress": [{"mapping": MAP, "verfy": VERIFY}]})
    assert (run.outcome, run.stage) == ("refused", "parse")
    assert run.message.startswith("unknown field `verfy`") and "Stack backtrace" not in run.message
    # tng is given one key a line, so serde's "at line L" names a JSON path: the object holding the unknown key
    assert run.path == "add_ingress[0]"
    # (an entry is read through serde(flatten), which names its end; elsewhere the line is the value's own)
    deep = run_once(binary, {"admin_bind": {"host": "0.0.0.0", "port": "80"}})
    assert (deep.outcome, deep.stage, deep.path) == ("refused", "parse", "admin_bind.port"), deep


def test_rule_error_is_a_refusal_at_check(binary: str) -> None:
    run = run_once(binary, {"add_ingress": [{"mapping": MAP, "no_ra": True, "verify": VERIFY}]})
    assert (run.outcome, run.stage) == ("refused", "check")
    assert run.message == "The 'no_ra: true' flag should not be used with 'verify' field"


def test_runtime_error_means_the_configuration_passed(binary: str) -> None:
    run = run_once(binary, {"add_ingress": [{"http_proxy": {"proxy_listen": {"port": 41000}}, "verify": VERIFY}]})
    assert (run.outcome, run.stage) == ("accepted", "runtime")
    # the fresh network namespace: even 127.0.0.1 is unreachable, so nothing left this machine
    assert "Failed to fetch certificates from AS at http://127.0.0.1:9/" in run.message
    assert "Network is unreachable" in run.message


def test_ready_is_stopped_and_nothing_is_left_running(binary: str) -> None:
    marker = 47113  # a port no other test uses: finds our process by its command line
    run = run_once(binary, {"add_ingress": [{"mapping": {**MAP, "in": {"port": marker}}, "no_ra": True}]})
    assert (run.outcome, run.stage) == ("accepted", "ready")
    left = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"launch" in cmd and str(marker).encode() in cmd and os.getpid() != int(proc.name):
                left.append(proc.name)
    assert left == []


def test_missing_aa_socket_is_this_machines_business(binary: str) -> None:
    """The socket is pointed at a stand-in, so TNG goes on to its later checks and then fails to connect."""
    run, _notes = judge(binary, {"add_egress": [{"mapping": MAP, "attest": AA}]})
    assert (run.outcome, run.stage) == ("accepted", "runtime")
    assert "Failed to connect to Attestation Agent" in run.message and "not found" not in run.message
    bad_url = {"add_ingress": [{"mapping": MAP, "attest": AA, "verify": {**VERIFY, "as_addr": "<as-url>"}}]}
    run, _ = judge(binary, bad_url)
    assert (run.outcome, run.stage) == ("refused", "check")
    assert "Invalid attestation service address: <as-url>" in run.message


def test_a_later_entry_is_judged_after_a_machine_error(binary: str) -> None:
    cfg = {
        "add_ingress": [{"http_proxy": {"proxy_listen": {"port": 41000}}, "verify": VERIFY}],
        "add_egress": [{"netfilter": {"capture_dst": {}}, "no_ra": True}],
    }
    run, notes = judge(binary, cfg)
    assert (run.outcome, run.stage) == ("refused", "check"), (run, notes)
    assert run.message == "add_egress[0]: one of host, ipset, port must be specified"
    assert notes and "error of this machine" in notes[0]


CROSS: list[tuple[str, dict[str, Any]]] = [
    (
        "mapping rules",
        {
            "add_ingress": [
                {
                    "mapping": {"rules": [{"in": {"port": 1000}, "out": {"host": "127.0.0.1", "port": 2000}}]},
                    "no_ra": True,
                }
            ]
        },
    ),
    (
        "hostname in mapping.out",
        {"add_egress": [{"mapping": {"in": {"port": 1}, "out": {"host": "backend.local", "port": 2}}, "no_ra": True}]},
    ),
    (
        "capture_dst host and ipset",
        {"add_egress": [{"netfilter": {"capture_dst": {"host": "1.2.3.4", "ipset": "x"}}, "no_ra": True}]},
    ),
    ("capture_dst one object", {"add_egress": [{"netfilter": {"capture_dst": {"port": 8080}}, "no_ra": True}]}),
    ("gRPC AS in verify", {"add_ingress": [{"mapping": MAP, "verify": {**VERIFY, "as_type": "grpc"}}]}),
    ("as_is_grpc ignored", {"add_ingress": [{"mapping": MAP, "verify": {**VERIFY, "as_is_grpc": True}}]}),
    ("verify without policy_ids", {"add_ingress": [{"mapping": MAP, "verify": {"as_addr": "http://127.0.0.1:9/"}}]}),
    ("hook under launch", {"add_egress": [{"hook": {}, "no_ra": True}]}),
    ("socks5", {"add_ingress": [{"socks5": {"proxy_listen": {"port": 1080}}, "no_ra": True}]}),
    ("two modes", {"add_ingress": [{"mapping": MAP, "socks5": {"proxy_listen": {"port": 1080}}, "no_ra": True}]}),
    ("no mode", {"add_ingress": [{"no_ra": True}]}),
    ("no_ra with attest", {"add_egress": [{"mapping": MAP, "no_ra": True, "attest": AA}]}),
    ("metric otlp", {"metric": {"exporters": [{"type": "otlp"}]}}),
    ("unknown ingress key", {"add_ingress": [{"mapping": MAP, "no_ra": True, "bogus": 1}]}),
    (
        "unknown http_proxy key passes",
        {"add_ingress": [{"http_proxy": {"proxy_listen": {"port": 41000}, "bogus": 1}, "no_ra": True}]},
    ),
    (
        "bad path regex",
        {
            "add_ingress": [
                {"mapping": MAP, "no_ra": True, "ohttp": {"path_rewrites": [{"match_regex": "(", "substitution": "x"}]}}
            ]
        },
    ),
    ("port as a string", {"add_ingress": [{"mapping": {"in": {"port": "1"}, "out": MAP["out"]}, "no_ra": True}]}),
]


@pytest.mark.parametrize("config", [c for _, c in CROSS], ids=[n for n, _ in CROSS])
def test_models_give_the_binarys_verdict(binary: str, config: dict[str, Any]) -> None:
    run, _ = judge(binary, config)
    found = problems(config, "2.12.0")
    assert (run.outcome == "accepted") == (not found), (run, found)


def test_error_chain_drops_the_backtrace() -> None:
    log = [
        "2026-12-07T07:02:05.644742Z  INFO tng: Starting tng instance now",
        "2026-12-07T07:02:05.646065Z ERROR tng: error=Invalid parameter",
        "",
        "Caused by:",
        "    AA address must start with unix:///",
        "",
        "Stack backtrace:",
        "   0: <unknown>",
    ]
    assert _error_chain(log) == "Invalid parameter: AA address must start with unix:///"


def test_a_user_namespace_judges_alike(binary: str) -> None:
    """What a user other than root gets (unshare --user --map-root-user --net): the same verdicts."""
    import shutil

    from cai_tui.tng.binary_judge import USER_NS

    prefix = (str(shutil.which("unshare")), *USER_NS)
    parse = run_once(binary, {"add_ingress": [{"mapping": MAP, "verfy": VERIFY}]}, prefix=prefix)
    ready = run_once(binary, {"add_ingress": [{"mapping": MAP, "no_ra": True}]}, prefix=prefix)
    runtime = run_once(binary, {"add_ingress": [{"mapping": MAP, "verify": VERIFY}]}, prefix=prefix)
    assert [(r.outcome, r.stage) for r in (parse, ready, runtime)] == [
        ("refused", "parse"),
        ("accepted", "ready"),
        ("accepted", "runtime"),
    ], (parse.message, ready.message, runtime.message)
