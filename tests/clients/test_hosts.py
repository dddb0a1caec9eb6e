"""One answer to "is this host loopback?" for the OSS client, the KMS action and the checks (proxy bypass, plain HTTP)."""

import pytest

from cai_tui.clients.hosts import is_loopback_host


@pytest.mark.parametrize("host", ["localhost", "LOCALHOST", "lab.localhost", "localhost.localdomain", "127.0.0.1",
                                  "127.8.9.10", "::1", "[::1]"])  # fmt: skip
def test_loopback(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["", "10.0.0.1", "oss-cn-beijing.aliyuncs.com", "localhost.example.com", "[::2]"])
def test_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)
