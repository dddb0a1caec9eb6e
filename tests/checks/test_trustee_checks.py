"""The Trustee checks against the lab Trustee (real KbsClient and httpx), healthy and with each Trustee fault."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cai_tui.lab.orchestrator import Lab
from cai_tui.lab.trustee import TrusteeSettings

from .checklib import assert_no_secrets, expect, lab_recipe, lab_secrets, outcome_text, run

TRUSTEE = ["trustee.*"]


def test_healthy_lab_passes_every_trustee_check(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path), TRUSTEE)
    assert set(out) == {
        "trustee.url",
        "trustee.auth_nonce",
        "trustee.as_reachable",
        "trustee.gateway_health",
        "trustee.resource",
    }
    for cid in out:
        expect(out, cid, "pass")
    nonce = out["trustee.auth_nonce"].result
    assert nonce.data["nonce"] and nonce.data["nonce"] in nonce.summary
    assert nonce.data["flavour"] == "alibaba" and nonce.data["protocol_version"] == "0.1.0"
    assert nonce.data["session_cookie"] is True and nonce.data["latency_ms"] >= 0
    # the seed's request, quoted as the evidence's source
    assert any('{"version":"0.1.0","tee":"tdx","extra-params":"foo"}' in e.source for e in nonce.evidence)
    assert out["trustee.gateway_health"].result.data["components"] == {
        "gateway": "ok",
        "kbs": "ok",
        "as": "ok",
        "rvps": "ok",
    }
    res = out["trustee.resource"].result
    assert res.data["bytes"] == len(lab.demo.password.encode())
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


@pytest.mark.parametrize(
    ("fault", "param", "failing"),
    [
        ("trustee-down", None, {"trustee.auth_nonce", "trustee.as_reachable", "trustee.gateway_health"}),
        ("trustee-slow", 30.0, {"trustee.auth_nonce", "trustee.as_reachable", "trustee.gateway_health"}),
        ("trustee-hang", None, {"trustee.auth_nonce", "trustee.as_reachable", "trustee.gateway_health"}),
    ],
)
def test_unreachable_trustee_fails_with_trustee_unreachable(
    lab: Any, tmp_path: Path, fault: str, param: float | None, failing: set[str]
) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set(fault, True, param)
    out = run(recipe, TRUSTEE, timeout=2.0)
    expect(out, "trustee.url", "pass")
    for cid in failing:
        expect(out, cid, "fail", "trustee-unreachable")
    expect(out, "trustee.resource", "skip")
    nonce = out["trustee.auth_nonce"].result
    if fault == "trustee-down":
        assert "refused" in nonce.summary and nonce.data["reason"] == "refused"
    else:  # answered late or never: the check's own timeout, well inside the runner's
        assert "did not answer in time" in nonce.summary and nonce.data["reason"] == "timeout"
        assert out["trustee.auth_nonce"].duration_ms < 2000


def test_slow_answer_within_the_budget_is_a_warning(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set("trustee-slow", True, 1.0)
    out = run(recipe, ["trustee.auth_nonce"], timeout=2.5)
    res = expect(out, "trustee.auth_nonce", "warn", "trustee-unreachable")
    assert "slow" in res.summary and res.data["latency_ms"] >= 1000


def test_protocol_mismatch_reports_the_version_the_server_expects(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set("kbs-version-mismatch", True)
    out = run(recipe, TRUSTEE)
    res = expect(out, "trustee.auth_nonce", "fail", "kbs-protocol-mismatch")
    assert res.data["server_expected_version"] == "0.4.0"
    assert "expects 0.4.0" in res.summary and "0.1.0" in res.summary
    assert "trustee.protocol_version to 0.4.0" in res.fix.text
    observed = " ".join(e.observed for e in res.evidence)
    assert "KBS Client Protocol Version Mismatch: expect =0.4.0 while the request is 0.1.0" in observed
    expect(out, "trustee.resource", "skip")


def test_recipe_with_the_servers_version_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An upstream-flavoured Trustee demanding 0.4.0: the recipe's version matches, and the flavour is told apart."""
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    settings = TrusteeSettings(protocol_version="0.4.0", flavour="upstream", release="trustee", backend="kms")
    with Lab(state_dir=tmp_path / "lab", trustee_settings=settings) as lab:
        out = run(lab_recipe(lab, tmp_path), ["trustee.auth_nonce", "trustee.resource"])
    res = expect(out, "trustee.auth_nonce", "pass")
    assert res.data["protocol_version"] == "0.4.0" and res.data["flavour"] == "upstream"
    assert res.data["server_expected_version"] == "0.4.0"
    expect(out, "trustee.resource", "pass")


@pytest.mark.parametrize("flavour", ["alibaba", "upstream"])
def test_seed_version_against_a_newer_trustee(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flavour: str) -> None:
    """The seed's 0.1.0 against a Trustee that wants 0.4.0: both checks negotiate 0.4.0 from the mismatch detail and
    say so; the handshake check warns (the instance's attestation agent must speak 0.4.0), the resource is fetched."""
    for var in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    settings = TrusteeSettings(protocol_version="0.4.0", flavour=flavour, release="trustee", backend="kms")
    with Lab(state_dir=tmp_path / "lab", trustee_settings=settings) as lab:
        recipe = lab_recipe(lab, tmp_path, lambda d: d["answers"]["trustee"].update(protocol_version="0.1.0"))
        out = run(recipe, ["trustee.auth_nonce", "trustee.resource"])
    res = expect(out, "trustee.auth_nonce", "warn", "kbs-protocol-mismatch")
    assert res.data["server_expected_version"] == "0.4.0"
    assert res.data["protocol_version"] == "0.4.0" and res.data["negotiated_from"] == "0.1.0"
    assert "protocol used: 0.4.0" in res.summary
    observed = " ".join(e.observed for e in res.evidence)
    assert "with version 0.4.0 the Trustee answers a nonce" in observed
    got = expect(out, "trustee.resource", "pass")
    assert got.data["protocol_version"] == "0.4.0" and got.data["negotiated_from"] == "0.1.0"
    assert "protocol 0.4.0 (negotiated: the server refused 0.1.0)" in got.summary


@pytest.mark.parametrize(
    ("fault", "want_faq", "words"),
    [
        ("kbs-policy-deny", "kbs-policy-deny", "PolicyDeny"),
        ("kbs-resource-missing", "kbs-resource-missing", "model-decryption-key"),
        ("kms-secret-missing", "kbs-resource-missing", "PluginInternalError"),
    ],
)
def test_resource_faults(lab: Any, tmp_path: Path, fault: str, want_faq: str, words: str) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set(fault, True)
    out = run(recipe, TRUSTEE)
    for cid in ("trustee.url", "trustee.auth_nonce", "trustee.as_reachable", "trustee.gateway_health"):
        expect(out, cid, "pass")
    res = expect(out, "trustee.resource", "fail", want_faq)
    assert words in res.summary
    if want_faq == "kbs-resource-missing":
        assert "CAI-2.6" in res.fix.text and res.data["secret_name"] == "model-decryption-key"
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


def test_gateway_backend_down(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set("gateway-backend-down", True)
    out = run(recipe, TRUSTEE)
    for cid in ("trustee.auth_nonce", "trustee.as_reachable", "trustee.gateway_health"):
        expect(out, cid, "fail", "trustee-backend-down")
    assert "Failed to forward request to KBS" in out["trustee.auth_nonce"].result.summary
    assert out["trustee.gateway_health"].result.data["components"]["kbs"] == "error"


def test_wrong_release_path(lab: Any, tmp_path: Path) -> None:
    """A TRUSTEE_URL without the release prefix the ALB routes: no KBS, no AS, no gateway there."""
    wrong = lab.trustee_url.rsplit("/", 1)[0] + "/nosuchrelease"
    recipe = lab_recipe(lab, tmp_path, lambda d: d["answers"]["trustee"].update(url=wrong))
    out = run(recipe, TRUSTEE)
    expect(out, "trustee.auth_nonce", "fail", "trustee-bad-url")
    expect(out, "trustee.as_reachable", "fail", "trustee-bad-url")
    res = expect(out, "trustee.gateway_health", "skip")
    assert "no Trustee gateway" in res.summary


@pytest.mark.parametrize(
    ("url", "verify_tls", "want", "want_faq", "words"),
    [
        ("http://192.0.2.10/trustee", True, "warn", "trustee-insecure-transport", "plain http"),
        ("https://192.0.2.10/trustee", False, "warn", "trustee-insecure-transport", "curl -k"),
        ("https://192.0.2.10/trustee", True, "pass", None, "192.0.2.10"),
        ("http://trustee.example.invalid/trustee", True, "fail", "trustee-bad-url", "does not resolve"),
    ],
)
def test_trustee_url_rules(
    lab: Any, tmp_path: Path, url: str, verify_tls: bool, want: str, want_faq: str | None, words: str
) -> None:
    """Only trustee.url runs: an IP literal needs no DNS, an .invalid name is refused without asking a resolver."""
    recipe = lab_recipe(lab, tmp_path, lambda d: d["answers"]["trustee"].update(url=url, verify_tls=verify_tls))
    out = run(recipe, ["trustee.url"])
    assert set(out) == {"trustee.url"}
    res = expect(out, "trustee.url", want, want_faq)
    assert words in res.summary


def test_no_trustee_url_skips(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path, lambda d: d["answers"]["trustee"].pop("url"))
    out = run(recipe, TRUSTEE)
    assert {o.result.status for o in out.values()} == {"skip"}
    assert "trustee.url is not set" in out["trustee.url"].result.summary


def test_a_trailing_slash_on_the_url_changes_no_request(lab: Any, tmp_path: Path) -> None:
    def slashed(doc: dict[str, Any]) -> None:
        doc["answers"]["trustee"]["url"] = str(doc["answers"]["trustee"]["url"]) + "//"

    def requests(recipe: Any) -> list[tuple[str, str, list[str]]]:
        out = run(recipe, TRUSTEE)
        return [(cid, o.result.status, [e.source for e in o.result.evidence]) for cid, o in sorted(out.items())]

    plain = requests(lab_recipe(lab, tmp_path))
    assert plain == requests(lab_recipe(lab, tmp_path, slashed))
    assert all(status == "pass" for _, status, _ in plain)
    assert not any("//as" in s or "//kbs" in s for _, _, sources in plain for s in sources)
