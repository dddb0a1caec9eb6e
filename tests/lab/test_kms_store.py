"""The lab KMS secret store and the in-process API (no HTTP)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.kms import KmsCredentials, KmsError, KmsLab, KmsStateError
from cai_tui.lab.kms.secrets_store import FILENAME, MAX_DEPRECATED_VERSIONS, SecretsStore


class Clock:
    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _store(tmp_path: Path, clock: Clock | None = None) -> SecretsStore:
    return SecretsStore(tmp_path / "state", clock=clock or Clock())


def _create(store: SecretsStore, name: str, data: str = "v", version: str = "v1") -> None:
    store.create(name=name, data=data, data_type="text", version_id=version)


def test_file_is_private_and_written_atomically(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _create(store, "a")
    path = tmp_path / "state" / FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    assert os.listdir(tmp_path / "state") == [FILENAME]
    doc = json.loads(path.read_text())
    assert [s["name"] for s in doc["secrets"]] == ["a"]


def test_failed_write_keeps_file_and_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _store(tmp_path)
    _create(store, "a", "old")
    before = (tmp_path / "state" / FILENAME).read_bytes()

    def broken_replace(src, dst):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        store.put_value("a", data="new", data_type="text", version_id="v2", stages=["ACSCurrent"])
    with pytest.raises(OSError):
        _create(store, "b")
    monkeypatch.undo()
    assert (tmp_path / "state" / FILENAME).read_bytes() == before
    assert os.listdir(tmp_path / "state") == [FILENAME]  # the temp files were removed
    assert store.get("a").by_stage("ACSCurrent").data == "old"
    assert store.find("b") is None


def test_restart_reads_back_and_fixes_mode_and_stale_temps(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _create(store, "a", "one")
    store.put_value("a", data="two", data_type="text", version_id="v2", stages=["ACSCurrent", "Blue"])
    path = tmp_path / "state" / FILENAME
    os.chmod(path, 0o644)
    (tmp_path / "state" / ".kms-secrets.abc.tmp").write_text("half written")
    again = _store(tmp_path)
    secret = again.get("a")
    assert [(v.version_id, v.stages) for v in secret.versions] == [
        ("v1", ["ACSPrevious"]),
        ("v2", ["ACSCurrent", "Blue"]),
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path / "state") == [FILENAME]


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[]", b'{"format": "other", "secrets": []}', b'{"format": "cai-tui-lab-kms-secrets/1"}'],
)
def test_corrupt_state_is_reported_not_overwritten(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "state").mkdir()
    path = tmp_path / "state" / FILENAME
    path.write_bytes(content)
    with pytest.raises(KmsStateError, match="move it away"):
        _store(tmp_path)
    assert path.read_bytes() == content


def test_recovery_window_ends_in_purge(tmp_path: Path) -> None:
    clock = Clock()
    store = _store(tmp_path, clock)
    _create(store, "a")
    planned = store.schedule_delete("a", 7)
    assert planned == clock.t + 7 * 86400
    with pytest.raises(KmsError) as e:
        store.schedule_delete("a", 7)
    assert e.value.code == "Rejected.ResourceInDeleteWindow"
    clock.t = planned - 1
    assert store.get("a").planned_delete == planned
    clock.t = planned
    assert store.find("a") is None
    assert json.loads((tmp_path / "state" / FILENAME).read_text())["secrets"] == []
    _create(store, "a")  # the name is free again


def test_stages_move_and_deprecated_versions_are_bounded(tmp_path: Path) -> None:
    store = _store(tmp_path)
    _create(store, "a", "0", "v0")
    store.put_value("a", data="c", data_type="text", version_id="custom", stages=["Pending"])
    for i in range(1, 15):
        store.put_value("a", data=str(i), data_type="text", version_id=f"v{i}", stages=["ACSCurrent"])
    secret = store.get("a")
    assert secret.by_stage("ACSCurrent").version_id == "v14"
    assert secret.by_stage("ACSPrevious").version_id == "v13"
    assert secret.by_stage("Pending").version_id == "custom"  # other labels stay where they are
    deprecated = [v.version_id for v in secret.versions if not v.stages]
    assert deprecated == [f"v{i}" for i in range(3, 13)]
    assert len(deprecated) == MAX_DEPRECATED_VERSIONS
    # a label moves: only one version carries it
    store.put_value("a", data="p", data_type="text", version_id="p2", stages=["Pending"])
    assert [v.version_id for v in store.get("a").versions if "Pending" in v.stages] == ["p2"]


def _lab(tmp_path: Path, faults: FaultSwitches | None = None) -> KmsLab:
    return KmsLab(tmp_path / "state", KmsCredentials(), faults or FaultSwitches())


def test_put_secret_and_get_secret_value_in_process(tmp_path: Path) -> None:
    faults = FaultSwitches()
    lab = _lab(tmp_path, faults)  # not started: seeding and lookups need no listener
    lab.put_secret("kbs/key", "text value", description="seeded")
    lab.put_secret("kbs/bin", b"\xff\x00\x10")
    lab.put_secret("kbs/utf8", "中文".encode())
    assert lab.get_secret_value("kbs/key") == b"text value"
    assert lab.get_secret_value("kbs/bin") == b"\xff\x00\x10"
    assert lab.store.get("kbs/bin").by_stage("ACSCurrent").data_type == "binary"
    assert lab.store.get("kbs/utf8").by_stage("ACSCurrent").data_type == "text"
    assert lab.get_secret_value("missing") is None
    assert lab.store.get("kbs/key").dkms_instance_id == lab.instance_id

    # re-seeding the same value adds no version; a new value becomes current
    lab.put_secret("kbs/key", "text value")
    assert len(lab.store.get("kbs/key").versions) == 1
    lab.put_secret("kbs/key", "rotated")
    assert lab.get_secret_value("kbs/key") == b"rotated"
    assert [v.stages for v in lab.store.get("kbs/key").versions] == [["ACSPrevious"], ["ACSCurrent"]]

    faults.set("kms-secret-missing", True)
    assert lab.get_secret_value("kbs/key") is None
    faults.set("kms-secret-missing", False)
    assert lab.get_secret_value("kbs/key") == b"rotated"

    lab.store.schedule_delete("kbs/key", 7)
    assert lab.get_secret_value("kbs/key") is None
    lab.put_secret("kbs/key", "rotated")  # seeding is authoritative: it cancels the deletion
    assert lab.get_secret_value("kbs/key") == b"rotated"

    # a second lab on the same directory sees the seeded secrets
    assert _lab(tmp_path).get_secret_value("kbs/bin") == b"\xff\x00\x10"


@pytest.mark.parametrize("name", ["", "a b", "../etc/passwd\n", "acs/x", "x" * 193, "名字"])
def test_put_secret_rejects_names_the_api_would_reject(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError):
        _lab(tmp_path).put_secret(name, "v")


def test_put_secret_rejects_oversized_values(tmp_path: Path) -> None:
    lab = _lab(tmp_path)
    lab.put_secret("ok", "x" * 30720)
    with pytest.raises(ValueError):
        lab.put_secret("big", "x" * 30721)


def test_credentials_validate_and_revoke() -> None:
    creds = KmsCredentials()
    with pytest.raises(ValueError):
        creds.add_key("", "s")
    with pytest.raises(ValueError):
        creds.add_key("has space", "s")
    creds.add_key("AK1", "s1")
    creds.add_sts_token("tok", "STS.1", "s2", 1e12)
    creds.add_sts_token("tok2", "AK1", "s3", 1e12)
    assert creds.key("AK1") is not None and creds.token("tok2") is not None
    creds.remove_key("AK1")
    assert creds.key("AK1") is None and creds.token("tok2") is None
    assert creds.token("tok") is not None
