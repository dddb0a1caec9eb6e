"""One OSS client for checks and actions: the check signs its requests exactly as the action it verifies does.

A loopback HTTP server records the Authorization header of what each sends (and answers AccessDenied as OSS would);
the action's bucket (``bucket_from_recipe``) and the check's (``oss.credentials``) must send the same signature
scheme, key, region and STS token. The lab run of the OSS checks (tests/checks/test_oss_checks.py) shows the lab
accepts the V4 signatures the checks now send.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cai_tui.checks.base import CheckContext
from cai_tui.checks.oss import oss_credentials
from cai_tui.clients.oss import OssActionError, bucket_from_recipe, oss_errors
from cai_tui.recipe import load_recipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget
from tests.helpers import REPO
from tests.render.conftest import with_answers

AK, SK, TOKEN = "LTAI5tSigningTestKey01", "signing-test-secret", "STS.signing.token.01"
DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>denied</Message>'
    b"<RequestId>5F0000000000000000000001</RequestId><HostId>x</HostId></Error>"
)


class _Recorder(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def _answer(self) -> None:
        self.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(403)
        self.send_header("Content-Type", "application/xml")
        self.send_header("x-oss-request-id", "5F0000000000000000000001")
        self.send_header("Content-Length", str(len(DENIED)))
        self.end_headers()
        self.wfile.write(DENIED)

    do_GET = do_HEAD = do_PUT = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[tuple[str, list[dict[str, str]]]]:
    seen: list[dict[str, str]] = []
    handler = type("Handler", (_Recorder,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _scheme(headers: dict[str, str]) -> tuple[str, str, str | None]:
    """(signature algorithm, credential scope without the date, STS token) of one request."""
    auth = headers["authorization"]
    algorithm, _, rest = auth.partition(" ")
    if algorithm == "OSS4-HMAC-SHA256":
        credential = rest.split(",")[0].split("=", 1)[1]  # AK/date/region/oss/aliyun_v4_request
        ak, _date, *scope = credential.split("/")
        return algorithm, "/".join([ak, *scope]), headers.get("x-oss-security-token")
    return algorithm, rest.split(":")[0], headers.get("x-oss-security-token")


@pytest.mark.parametrize("sts", [False, True], ids=["accesskey", "sts"])
def test_the_check_signs_as_the_action(recorder, monkeypatch: pytest.MonkeyPatch, sts: bool) -> None:
    endpoint, seen = recorder
    monkeypatch.setenv("SIGN_AK", AK)
    monkeypatch.setenv("SIGN_SK", SK)
    monkeypatch.setenv("SIGN_TOKEN", TOKEN)
    oss = {
        "endpoint": endpoint,
        "upload_endpoint": None,
        "region": "cn-beijing",
        "access_key_id": "env:SIGN_AK",
        "access_key_secret": "env:SIGN_SK",
        "session_token": "env:SIGN_TOKEN" if sts else None,
    }
    answers = with_answers(load_recipe(REPO / "recipes/lab-demo.yaml").recipe, {"oss": oss})

    bucket = bucket_from_recipe(answers.answers, "lab-models", timeout=5)
    with pytest.raises(OssActionError), oss_errors("GetBucketInfo", bucket):
        bucket.get_bucket_info()
    action = [_scheme(h) for h in seen]
    seen.clear()

    ctx = CheckContext(recipe=answers, targets={"workstation": LocalTarget()}, redactor=Redactor(), timeout=5)
    result = asyncio.run(oss_credentials(ctx))
    check = [_scheme(h) for h in seen]

    assert result.status == "pass" and "authenticated" in result.summary, result  # AccessDenied: signed correctly
    assert action and check
    assert (
        set(check)
        == set(action)
        == {("OSS4-HMAC-SHA256", f"{AK}/cn-beijing/oss/aliyun_v4_request", TOKEN if sts else None)}
    )
