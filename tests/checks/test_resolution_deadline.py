"""Issue 15 point 7: an IP literal needs no resolution, and a step that ran out of its deadline is ``unknown``
("timed out after N s"), never a failure with a DNS fix.

The deadline is made 0 by giving the check a budget of 0 s (the resolver never gets more than the check's whole
budget): a real getaddrinfo cannot answer in 0 s, so a check that still passes never asked the resolver, and a name
that must be resolved runs out of time. The checks are called directly (the runner would stop a 0 s check itself).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from cai_tui.checks.base import CheckContext, Result
from cai_tui.checks.common import resolve
from cai_tui.checks.oss import oss_endpoint
from cai_tui.checks.trustee import trustee_url
from cai_tui.recipe import load_recipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget
from tests.helpers import REPO
from tests.render.conftest import with_answers

LAB = REPO / "recipes/lab-demo.yaml"


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.fixture(params=["127.0.0.1", "::1"])
def loopback_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int]]:
    """A real TCP server on loopback (it accepts connections; that is all oss.endpoint asks of it)."""
    host = request.param
    if host == "::1" and not _has_ipv6_loopback():
        pytest.skip("no IPv6 loopback on this machine")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as srv:
        srv.bind((host, 0))
        srv.listen(8)
        yield host, srv.getsockname()[1]


def _url(host: str, port: int, path: str = "") -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def _run(check: Any, answers: dict[str, Any], budget: float = 0.0) -> Result:
    recipe = with_answers(load_recipe(LAB).recipe, answers)
    ctx = CheckContext(recipe=recipe, targets={"workstation": LocalTarget()}, redactor=Redactor(), timeout=budget)
    return asyncio.run(check(ctx))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "[::1]", "10.1.2.3", "2001:db8::7"])
def test_a_literal_is_its_own_address_without_a_resolver(host: str) -> None:
    assert asyncio.run(resolve(host, 80, 0.0)) == [host.strip("[]")]


def test_a_name_with_no_time_left_times_out() -> None:
    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(resolve("localhost", 80, 0.0))


def test_oss_endpoint_on_an_ip_literal_passes_with_no_time_to_resolve(loopback_server: tuple[str, int]) -> None:
    host, port = loopback_server
    res = _run(oss_endpoint, {"oss": {"endpoint": _url(host, port), "upload_endpoint": None}})
    assert res.status == "pass", res
    assert not any("getaddrinfo" in e.source for e in res.evidence), res.evidence
    assert any("is an IP address" in e.observed for e in res.evidence)


def test_trustee_url_on_an_ip_literal_passes_with_no_time_to_resolve(loopback_server: tuple[str, int]) -> None:
    host, port = loopback_server
    res = _run(trustee_url, {"trustee": {"url": _url(host, port, "/trustee")}})
    assert res.status == "pass" and "is an IP address" in res.summary, res
    assert not any("getaddrinfo" in e.source for e in res.evidence), res.evidence


@pytest.mark.parametrize(
    ("check", "answers"),
    [
        (oss_endpoint, {"oss": {"endpoint": "http://localhost:9", "upload_endpoint": None}}),
        (trustee_url, {"trustee": {"url": "http://localhost:9/trustee"}}),
    ],
    ids=["oss.endpoint", "trustee.url"],
)
def test_a_resolution_out_of_time_is_unknown_not_a_dns_failure(check: Any, answers: dict[str, Any]) -> None:
    res = _run(check, answers)
    assert res.status == "unknown", res
    assert res.summary.endswith("timed out after 0 s") and "localhost" in res.summary, res.summary
    assert res.fix is None  # no DNS fix for what may be a busy machine
    assert "does not resolve" not in res.summary


def test_a_name_that_does_not_exist_still_fails_with_its_fix() -> None:
    res = _run(oss_endpoint, {"oss": {"endpoint": "http://no-such-host.invalid:9", "upload_endpoint": None}}, 3.0)
    assert res.status == "fail" and "does not resolve" in res.summary
    assert res.fix is not None and res.fix.faq_id == "oss-unreachable"


def test_a_connect_out_of_time_is_unknown() -> None:
    """A loopback server whose accept queue is full: Linux drops further SYNs, so the connect runs out of time."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(0)
        port = srv.getsockname()[1]
        fillers = []
        try:
            for _ in range(8):  # fill the queue (never accepted)
                c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                c.setblocking(False)
                c.connect_ex(("127.0.0.1", port))
                fillers.append(c)
            res = _run(oss_endpoint, {"oss": {"endpoint": f"http://127.0.0.1:{port}", "upload_endpoint": None}}, 1.0)
        finally:
            for c in fillers:
                c.close()
    assert res.status == "unknown", res
    assert res.summary == f"connecting to 127.0.0.1:{port}: timed out after 0.5 s" and res.fix is None
