"""gocryptfs.conf: exact layout, key wrapping, validation on load. (Fast scrypt here; interop tests use N=65536.)"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from gocryptfs_testlib import FAST_LOGN, PASSWORD

from cai_tui.gocryptfs import (
    GocryptfsConfig,
    InsecureConfig,
    NotACipherdir,
    UnsupportedConfig,
    WrongPassword,
    create_config,
    load_config,
    verify_password,
)
from cai_tui.gocryptfs.keys import HKDF_INFO_CONTENT, HKDF_INFO_NAMES, Keys, hkdf_sha256


def _config_text(tmp_path: Path) -> tuple[Path, str, bytes]:
    config, master = create_config(PASSWORD, scrypt_logn=FAST_LOGN, creator="test creator")
    path = tmp_path / "gocryptfs.conf"
    config.write(path)
    return path, path.read_text(), master


def test_layout_is_gos_marshalindent(tmp_path: Path) -> None:
    path, text, _ = _config_text(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert not (tmp_path / "gocryptfs.conf.tmp").exists()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    pattern = (
        r'\{\n\t"Creator": "test creator",\n\t"EncryptedKey": "[A-Za-z0-9+/]{86}==",\n'
        r'\t"ScryptObject": \{\n\t\t"Salt": "[A-Za-z0-9+/]{43}=",\n\t\t"N": 1024,\n\t\t"R": 8,\n\t\t"P": 1,\n'
        r'\t\t"KeyLen": 32\n\t\},\n\t"Version": 2,\n\t"FeatureFlags": \[\n\t\t"HKDF",\n\t\t"GCMIV128",\n'
        r'\t\t"DirIV",\n\t\t"EMENames",\n\t\t"LongNames",\n\t\t"Raw64"\n\t\]\n\}\n'
    )
    assert re.fullmatch(pattern, text), text
    obj = json.loads(text)
    assert list(obj) == ["Creator", "EncryptedKey", "ScryptObject", "Version", "FeatureFlags"]
    assert len(base64.b64decode(obj["ScryptObject"]["Salt"])) == 32
    assert len(base64.b64decode(obj["EncryptedKey"])) == 64


SALT32 = base64.b64encode(bytes(32)).decode()
DEFAULT = ["HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64"]


def test_default_parameters_are_gocryptfs_defaults() -> None:
    config = GocryptfsConfig.from_json(
        json.dumps(
            {
                "Creator": "x",
                "EncryptedKey": base64.b64encode(bytes(64)).decode(),
                "ScryptObject": {
                    "Salt": base64.b64encode(bytes(32)).decode(),
                    "N": 65536,
                    "R": 8,
                    "P": 1,
                    "KeyLen": 32,
                },
                "Version": 2,
                "FeatureFlags": ["HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64"],
            }
        )
    )
    assert config.is_default_format and config.scrypt.logn == 16
    with pytest.raises(ValueError):
        create_config(PASSWORD, scrypt_logn=9)
    with pytest.raises(ValueError):
        create_config(b"")


def test_key_wrapping_by_hand(tmp_path: Path) -> None:
    """EncryptedKey = nonce(16) ‖ AES-GCM(HKDF(scrypt(pw), "AES-GCM file content encryption"), AAD=uint64 0)."""
    import hashlib

    _, text, master = _config_text(tmp_path)
    obj = json.loads(text)
    s = obj["ScryptObject"]
    scrypt_hash = hashlib.scrypt(
        PASSWORD, salt=base64.b64decode(s["Salt"]), n=s["N"], r=s["R"], p=s["P"], dklen=s["KeyLen"]
    )
    kek = hkdf_sha256(scrypt_hash, b"AES-GCM file content encryption")
    blob = base64.b64decode(obj["EncryptedKey"])
    assert AESGCM(kek).decrypt(blob[:16], blob[16:], bytes(8)) == master
    keys = Keys.from_master_key(master)
    assert keys.content == hkdf_sha256(master, HKDF_INFO_CONTENT)
    assert keys.names == hkdf_sha256(master, HKDF_INFO_NAMES)
    assert keys.content != keys.names != master
    assert keys.content.hex() not in repr(keys) and keys.names.hex() not in repr(keys)


def test_load_roundtrip_and_passwords(tmp_path: Path) -> None:
    _, text, master = _config_text(tmp_path)
    config = load_config(tmp_path)
    assert config.to_json() == text
    assert config.decrypt_master_key(PASSWORD) == master
    assert config.decrypt_master_key(PASSWORD.decode()) == master
    with pytest.raises(WrongPassword):
        config.decrypt_master_key(b"wrong")
    assert verify_password(tmp_path, PASSWORD) is True
    assert verify_password(tmp_path, b"wrong") is False


def test_go_json_escapes(tmp_path: Path) -> None:
    config, _ = create_config(PASSWORD, scrypt_logn=FAST_LOGN, creator="a<b>&c ü")
    text = config.to_json()
    assert '"Creator": "a\\u003cb\\u003e\\u0026c ü"' in text
    assert GocryptfsConfig.from_json(text).creator == "a<b>&c ü"


def test_missing_or_corrupt_config_is_not_a_cipherdir(tmp_path: Path) -> None:
    with pytest.raises(NotACipherdir):
        load_config(tmp_path)
    with pytest.raises(NotACipherdir):
        load_config(tmp_path / "does-not-exist")
    conf = tmp_path / "gocryptfs.conf"
    for bad in [b"", b"{not json", b"[]", b'{"Creator": "x"}', b'{"EncryptedKey": "!!!", "ScryptObject": {}}']:
        conf.write_bytes(bad)
        with pytest.raises(NotACipherdir):
            load_config(tmp_path)


def _mutated(text: str, **changes: object) -> str:
    obj = json.loads(text)
    for key, value in changes.items():
        if key in {"N", "R", "P", "KeyLen", "Salt"}:
            obj["ScryptObject"][key] = value
        else:
            obj[key] = value
    return json.dumps(obj, indent="\t") + "\n"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"N": 512}, InsecureConfig),
        ({"R": 7}, InsecureConfig),
        ({"P": 0}, InsecureConfig),
        ({"KeyLen": 31}, InsecureConfig),
        ({"Salt": base64.b64encode(bytes(31)).decode()}, InsecureConfig),
        ({"N": 3000}, UnsupportedConfig),
        ({"Version": 3}, UnsupportedConfig),
        (
            {"FeatureFlags": ["HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64", "Quantum"]},
            UnsupportedConfig,
        ),
        ({"FeatureFlags": ["HKDF", "GCMIV128", "EMENames", "AESSIV"]}, UnsupportedConfig),
        ({"FeatureFlags": ["HKDF", "XChaCha20Poly1305", "EMENames"]}, UnsupportedConfig),
        ({"FeatureFlags": ["HKDF", "DirIV", "EMENames"]}, UnsupportedConfig),  # AES-GCM without GCMIV128
        ({"FeatureFlags": ["HKDF", "GCMIV128", "PlaintextNames", "DirIV"]}, UnsupportedConfig),
        ({"FeatureFlags": ["HKDF", "GCMIV128", "EMENames", "LongNames", "LongNameMax"]}, UnsupportedConfig),
        ({"LongNameMax": 100}, UnsupportedConfig),
        ({"FeatureFlags": ["GCMIV128", "DirIV", "EMENames", "LongNames", "Raw64"]}, UnsupportedConfig),  # no HKDF
        ({"FeatureFlags": ["HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames"]}, UnsupportedConfig),  # no Raw64
        ({"FeatureFlags": ["HKDF", "GCMIV128", "DirIV", "EMENames", "FIDO2", "LongNames", "Raw64"]}, UnsupportedConfig),
        ({"EncryptedKey": base64.b64encode(bytes(60)).decode()}, UnsupportedConfig),
    ],
)
def test_validation_on_load(tmp_path: Path, changes: dict[str, object], error: type[Exception]) -> None:
    _, text, _ = _config_text(tmp_path)
    with pytest.raises(error):
        GocryptfsConfig.from_json(_mutated(text, **changes))


def test_insecure_is_unsupported_and_all_are_gocryptfs_errors() -> None:
    from cai_tui.gocryptfs import GocryptfsError

    assert issubclass(InsecureConfig, UnsupportedConfig)
    for cls in (NotACipherdir, WrongPassword, UnsupportedConfig):
        assert issubclass(cls, GocryptfsError)


def test_accepted_variants(tmp_path: Path) -> None:
    _, text, master = _config_text(tmp_path)
    variant = GocryptfsConfig.from_json(
        _mutated(
            text,
            FeatureFlags=["HKDF", "GCMIV128", "DirIV", "EMENames", "LongNames", "LongNameMax", "Raw64"],
            LongNameMax=100,
        )
    )
    assert variant.effective_long_name_max == 100 and not variant.is_default_format
    assert '\t"LongNameMax": 100\n}' in variant.to_json()
    assert variant.decrypt_master_key(PASSWORD) == master
    plain = GocryptfsConfig.from_json(_mutated(text, FeatureFlags=["HKDF", "GCMIV128", "PlaintextNames"]))
    assert plain.plaintext_names and plain.effective_long_name_max is None


def test_write_is_atomic_and_exclusive(tmp_path: Path) -> None:
    config, _ = create_config(PASSWORD, scrypt_logn=FAST_LOGN)
    target = tmp_path / "gocryptfs.conf"
    (tmp_path / "gocryptfs.conf.tmp").write_text("stale")
    with pytest.raises(FileExistsError):
        config.write(target)
    assert not target.exists()
    os.unlink(tmp_path / "gocryptfs.conf.tmp")
    config.write(target)
    assert load_config(target).encrypted_key == config.encrypted_key
