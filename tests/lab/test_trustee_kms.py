"""The KMS resource backend: only ``<tag>`` is the secret name; a miss names aliyun KMS in the server log."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest_trustee import *  # noqa: F403
from conftest_trustee import log_has

from cai_tui.clients.kbs import KbsClient, KbsError, make_admin_token


class DictKms:
    """A plain dict-backed lookup that records what it was asked."""

    def __init__(self, secrets: dict[str, bytes]) -> None:
        self.secrets = secrets
        self.asked: list[str] = []

    def __call__(self, name: str) -> bytes | None:
        self.asked.append(name)
        return self.secrets.get(name)


def test_kms_backend_uses_only_the_tag(make_trustee) -> None:
    kms = DictKms({"model-decryption-key": b"from-kms"})
    lab = make_trustee(backend="kms", kms_lookup=kms)
    lab.set_resource("default", "aliyun", "model-decryption-key", b"from-local-store")  # must not be used
    with KbsClient(lab.url) as kc:
        kc.attest_sample()
        assert kc.get_resource("kbs:///default/aliyun/model-decryption-key") == b"from-kms"
        assert kc.get_resource("kbs:///other/anything/model-decryption-key") == b"from-kms"
    assert kms.asked == ["model-decryption-key", "model-decryption-key"]
    assert log_has(lab, "Use aliyun KMS backend. Ignore default/aliyun")


@pytest.mark.parametrize("flavour,status", [("alibaba", 500), ("upstream", 401)])
def test_kms_miss(make_trustee, flavour: str, status: int) -> None:
    kms = DictKms({})
    lab = make_trustee(backend="kms", flavour=flavour, kms_lookup=kms)
    with KbsClient(lab.base_url) as kc:
        kc.attest_sample()
        with pytest.raises(KbsError) as info:
            kc.get_resource("kbs:///default/aliyun/model-decryption-key")
    err = info.value
    assert (err.status, err.type_variant, err.detail) == (status, "PluginInternalError", "Plugin internal error")
    assert kms.asked == ["model-decryption-key"]
    assert log_has(lab, "failed to get resource from aliyun KMS")
    assert not log_has(lab, "resource not found:")


def test_kms_lookup_errors_and_unwired_kms(make_trustee) -> None:
    def broken(name: str) -> bytes | None:
        raise ConnectionError("kms endpoint refused")

    for lookup, cause in ((broken, "ConnectionError: kms endpoint refused"), (None, "no KMS is wired")):
        lab = make_trustee(backend="kms", kms_lookup=lookup)
        with KbsClient(lab.base_url) as kc:
            kc.attest_sample()
            with pytest.raises(KbsError, match="PluginInternalError"):
                kc.get_resource("kbs:///default/aliyun/k")
        assert log_has(lab, f"failed to get resource from aliyun KMS: {cause}")


def test_kms_backend_refuses_writes(make_trustee, admin_keys: tuple[bytes, bytes]) -> None:
    lab = make_trustee(backend="kms", kms_lookup=DictKms({}))
    resp = httpx.post(
        lab.base_url + "/kbs/v0/resource/default/aliyun/new",
        content=b"x",
        headers={"Authorization": f"Bearer {make_admin_token(admin_keys[0])}"},
    )
    assert resp.status_code == 500 and resp.json()["type"].endswith("/PluginInternalError")
    assert log_has(lab, "aliyun KMS backend does not support POST")
    assert not (lab.state_dir / "kbs-repository/default/aliyun/new").exists()


def test_kms_resource_missing_fault(make_trustee, faults) -> None:
    lab = make_trustee(backend="kms", kms_lookup=DictKms({"k": b"v"}))
    with KbsClient(lab.base_url) as kc:
        kc.attest_sample()
        assert kc.get_resource("kbs:///a/b/k") == b"v"
        faults.set("kbs-resource-missing", True)
        with pytest.raises(KbsError, match="PluginInternalError"):
            kc.get_resource("kbs:///a/b/k")
        faults.set("kbs-resource-missing", False)
        assert kc.get_resource("kbs:///a/b/k") == b"v"
    assert log_has(lab, "failed to get resource from aliyun KMS")
