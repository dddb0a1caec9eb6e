"""The models of each TNG version: forms the real TNG accepts are accepted, what it refuses is refused at its JSON
path with a fix. Cases cross-checked with the 2.12 binary are in test_binary_judge.py; the docs' examples in
test_doc_examples_agreement.py."""

from __future__ import annotations

from typing import Any

import pytest

from cai_tui.tng.problems import Problem
from cai_tui.tng.schema import problems

MAP = {"in": {"port": 10001}, "out": {"host": "127.0.0.1", "port": 20001}}
VERIFY = {"as_addr": "http://127.0.0.1:8080/", "policy_ids": ["default"]}
AA = {"aa_addr": "unix:///run/confidential-containers/attestation-agent/attestation-agent.sock"}


def ok(config: dict[str, Any], version: str) -> None:
    assert problems(config, version) == [], problems(config, version)


def one(config: dict[str, Any], version: str) -> Problem:
    found = problems(config, version)
    assert len(found) == 1, found
    assert found[0].fix, found[0]
    return found[0]


def test_1_0_6_top_level_control_interface_and_metric() -> None:
    cfg = {
        "control_interface": {"restful": {"host": "0.0.0.0", "port": 50000}},
        "metric": {"exporters": [{"type": "falcon", "server_url": "http://f", "endpoint": "e", "tags": {"a": "b"}}]},
        "add_ingress": [{"mapping": MAP, "verify": VERIFY}],
    }
    ok(cfg, "1.0.6")
    p = problems(cfg, "1.0.3")
    assert [x.path for x in p] == ["control_interface", "metric"]
    assert p[0].message.startswith("unknown field `control_interface`, expected one of `admin_bind`")


@pytest.mark.parametrize(
    "netfilter",
    [
        {"capture_dst": {"port": 8080}},
        {"capture_dst": [{"host": "10.0.0.0/24", "port": 80, "port_end": 90}, {"ipset": "s"}]},
        {"capture_dst": [{"port": 80}], "capture_local_traffic": True, "listen_port": 40000, "so_mark": 565},
    ],
)
def test_2x_egress_netfilter_capture_dst_one_or_many(netfilter: dict[str, Any]) -> None:
    ok({"add_egress": [{"netfilter": netfilter, "attest": AA}]}, "2.8.0")


def test_2x_capture_dst_rules() -> None:
    base = {"attest": AA}
    p = one({"add_egress": [{"netfilter": {"capture_dst": {"host": "1.2.3.4", "ipset": "x"}}, **base}]}, "2.8.0")
    assert (p.path, p.message) == (
        "add_egress[0].netfilter.capture_dst[0]",
        "Only one of host or ipset can be specified",
    )
    p = one({"add_egress": [{"netfilter": {"capture_dst": {"host": "10.0.0.1/24"}}, **base}]}, "2.8.0")
    assert p.path == "add_egress[0].netfilter.capture_dst[0].host" and "host bits" in p.message


def test_2x_mapping_rules_and_ipv4_hosts() -> None:
    rules = {
        "rules": [
            {"in": {"port": 1000, "port_end": 1009}, "out": {"host": "127.0.0.1", "port": 2000, "port_end": 2009}}
        ]
    }
    ok({"add_ingress": [{"mapping": rules, "verify": VERIFY}]}, "2.8.0")
    hostname = {"in": {"port": 1}, "out": {"host": "backend.local", "port": 2}}
    p = one({"add_egress": [{"mapping": hostname, "attest": AA}]}, "2.8.0")
    assert p.path == "add_egress[0].mapping.out.host" and "not an IPv4 address" in p.message and "IPv4" in p.fix
    ok({"add_egress": [{"mapping": hostname, "attest": AA}]}, "2.6.0")  # before 2.7.0 the host was a string
    p = one({"add_egress": [{"mapping": {"in": {"port": 1}, "out": {"port": 2}}, "attest": AA}]}, "2.8.0")
    assert p.message == "rule 0: out.host is required"
    bad_span = {"rules": [{"in": {"port": 1, "port_end": 3}, "out": {"host": "127.0.0.1", "port": 5}}]}
    assert (
        "port range size (3) != out port range size (1)"
        in one({"add_egress": [{"mapping": bad_span, "attest": AA}]}, "2.8.0").message
    )


def test_2x_ohttp_forms() -> None:
    ok(
        {
            "add_ingress": [
                {
                    "mapping": MAP,
                    "verify": VERIFY,
                    "ohttp": {
                        "path_rewrites": [{"match_regex": "^/v1/(.*)$", "substitution": "/\\1"}],
                        "path_default": "original",
                        "tls": True,
                        "header_passthrough": {"request_headers": "all"},
                    },
                }
            ]
        },
        "2.8.0",
    )
    ok(
        {
            "add_egress": [
                {
                    "mapping": MAP,
                    "attest": AA,
                    "decap_from_http": {
                        "allow_non_tng_traffic_regexes": ["/health"],
                        "cors": {"allow_origins": ["*"]},
                        "key": {"source": "self_generated", "rotation_interval": 300},
                    },
                }
            ]
        },
        "2.8.0",
    )
    p = one({"add_egress": [{"mapping": MAP, "attest": AA, "ohttp": {"key": {"source": "peer_shared"}}}]}, "2.8.0")
    assert (p.path, p.message) == ("add_egress[0].ohttp.key.rotation_interval", "missing field `rotation_interval`")
    p = one({"add_ingress": [{"mapping": MAP, "verify": VERIFY, "ohttp": {"path_default": "root"}}]}, "2.7.0")
    assert p.path == "add_ingress[0].ohttp.path_default" and p.message.startswith("unknown field")


def test_2x_attest_and_verify_variants() -> None:
    for attest in (
        AA,
        {"model": "passport", "aa_type": "uds", **AA, "as_addr": "http://127.0.0.1:8080/", "policy_ids": ["default"]},
        {"aa_provider": "coco_asr", "asr_addr": "http://127.0.0.1:8081/"},
        {**AA, "refresh_interval": 0},
    ):
        ok({"add_egress": [{"mapping": MAP, "attest": attest}]}, "2.8.0")
    for verify in (
        VERIFY,
        {**VERIFY, "as_headers": {"Authorization": "Bearer x"}},
        {"as_type": "builtin"},
        {"model": "passport", "policy_ids": ["default"], "as_addr": "http://127.0.0.1:8080/"},
        {**VERIFY, "as_is_grpc": False},  # ignored by 2.x (flattened tagged variants)
    ):
        ok({"add_ingress": [{"mapping": MAP, "verify": verify}]}, "2.8.0")
    p = one({"add_ingress": [{"mapping": MAP, "verify": {"as_addr": "http://127.0.0.1:8080/"}}]}, "2.8.0")
    assert (p.path, p.message) == ("add_ingress[0].verify.policy_ids", "missing field `policy_ids`")
    p = one({"add_ingress": [{"mapping": MAP, "verify": {**VERIFY, "as_type": "grpc"}}]}, "2.8.0")
    assert p.message == "Remote AS gRPC is not supported" and "restful" in p.fix
    p = one({"add_ingress": [{"mapping": MAP, "verify": {"model": "passport", "policy_ids": ["d"]}}]}, "2.8.0")
    assert "At least one of 'as_addr' or 'trusted_certs_paths'" in p.message
    p = one({"add_egress": [{"mapping": MAP, "attest": {"aa_addr": "/run/aa.sock"}}]}, "2.8.0")
    assert (p.path, p.message) == ("add_egress[0].attest.aa_addr", "AA address must start with unix:///")


def test_2x_other_modes_and_top_level() -> None:
    cfg = {
        "control_interface": {"restful": {"port": 50000}},
        "metric": {"exporters": [{"type": "stdout", "step": 1}]},
        "trace": {"exporters": [{"type": "oltp", "protocol": "grpc", "endpoint": "http://127.0.0.1:4317"}]},
        "add_ingress": [
            {
                "socks5": {"proxy_listen": {"port": 1080}, "auth": {"username": "u", "password": "p"}},
                "verify": VERIFY,
                "rats_tls": {"multiplex": True},
            },
            {
                "http_proxy": {"proxy_listen": {"port": 41000}, "dst_filters": {"domain": "*.svc", "port": 80}},
                "verify": VERIFY,
            },
        ],
        "add_egress": [{"mapping": MAP, "attest": AA, "direct_forward": [{"http_path": "/public/.*"}]}],
    }
    ok(cfg, "2.8.0")
    p = one({"metric": {"exporters": [{"type": "otlp"}]}}, "2.8.0")
    assert p.path == "metric.exporters[0]" and "oltp" in p.message
    p = one({"add_egress": [{"hook": {}, "no_ra": True}]}, "2.8.0")
    assert "only allowed via `tng exec`" in p.message


def test_every_entry_needs_one_mode_and_ra() -> None:
    p = one({"add_ingress": [{"no_ra": True}]}, "2.8.0")
    assert p.path == "add_ingress[0]" and "exactly one of mapping, http_proxy" in p.message
    p = one({"add_ingress": [{"mapping": MAP}]}, "2.8.0")
    assert "should be set for 'add_egress'" in p.message  # TNG 2.x's own words, even for an ingress
    p = one({"add_ingress": [{"mapping": MAP, "no_ra": True, "attest": AA}]}, "2.8.0")
    assert p.message == "The 'no_ra: true' flag should not be used with 'attest' field"
