"""The KMS checks against the lab KMS (real alibabacloud-kms20160120 SDK), and the ClientKey files (real cryptography)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from .checklib import assert_no_secrets, expect, lab_recipe, lab_secrets, outcome_text, run

KMS = ["kms.secret_exists", "kms.secret_matches"]
SECRET = "model-decryption-key"


def test_healthy_lab_passes_both_secret_checks(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path), KMS)
    res = expect(out, "kms.secret_exists", "pass")
    assert res.data == {"secret_name": SECRET, "dkms_instance_id": "kst-lab00000000000000000"}
    res = expect(out, "kms.secret_matches", "pass")
    assert "unlocks" in res.summary
    assert any(e.source.endswith("demo-cipher/gocryptfs.conf") for e in res.evidence)  # the local cipher dir
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


def test_secret_matches_with_the_conf_from_oss(lab: Any, tmp_path: Path) -> None:
    """Without a local cipher dir the check fetches <prefix>gocryptfs.conf from OSS."""
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["model"].pop("cipher_dir")), KMS)
    res = expect(out, "kms.secret_matches", "pass")
    assert any("GetObject lab-models/demo-gocryptfs/gocryptfs.conf" in e.source for e in res.evidence)
    lab.kms_lab.put_secret(SECRET, "not-the-model-password")
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["model"].pop("cipher_dir")), KMS)
    expect(out, "kms.secret_matches", "fail", "model-password-wrong")
    assert_no_secrets(outcome_text(out), [*lab_secrets(lab), "not-the-model-password"])


def test_secret_missing_names_the_secret_and_cai_2_6(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set("kms-secret-missing", True)
    out = run(recipe, KMS)
    res = expect(out, "kms.secret_exists", "fail", "kms-secret-missing")
    assert f"'{SECRET}'" in res.summary and "Forbidden.ResourceNotFound" in res.summary
    assert "CAI-2.6" in res.fix.text and SECRET in res.fix.text
    expect(out, "kms.secret_matches", "skip")


def test_model_key_id_tag_is_the_secret_name(lab: Any, tmp_path: Path) -> None:
    """Only MODEL_KEY_ID's last segment counts: a tag naming no secret fails even if kms.secret_name exists."""
    edit = lambda d: d["answers"]["trustee"].update(model_key_id="kbs:///default/aliyun/no-such-secret")  # noqa: E731
    out = run(lab_recipe(lab, tmp_path, edit), KMS)
    res = expect(out, "kms.secret_exists", "fail", "kms-secret-missing")
    assert "'no-such-secret'" in res.summary


def test_secret_name_disagreeing_with_model_key_id_warns(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path, lambda d: d["answers"]["kms"].update(secret_name="other-name")), KMS)
    res = expect(out, "kms.secret_exists", "warn", "kms-secret-missing")
    assert "'other-name'" in res.summary
    expect(out, "kms.secret_matches", "pass")


def test_bad_access_key(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.faults.set("kms-bad-key", True)
    out = run(recipe, KMS)
    res = expect(out, "kms.secret_exists", "fail", "kms-invalid-access-key")
    assert "InvalidAccessKeyId.NotFound" in res.summary
    expect(out, "kms.secret_matches", "skip")
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


def test_kms_unreachable(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.kms_lab.stop()
    out = run(recipe, KMS)
    expect(out, "kms.secret_exists", "fail", "kms-unreachable")


def test_wrong_password_in_kms(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.kms_lab.put_secret(SECRET, "another-value-entirely")
    out = run(recipe, KMS)
    expect(out, "kms.secret_exists", "pass")
    res = expect(out, "kms.secret_matches", "fail", "model-password-wrong")
    assert "does not unlock" in res.summary
    # the recipe's model.password (the encryption key file) does unlock it: the fix says so
    assert "model.password" in res.fix.text and "another value" in res.fix.text
    assert_no_secrets(outcome_text(out), [*lab_secrets(lab), "another-value-entirely"])


def test_password_with_a_trailing_newline_in_kms(lab: Any, tmp_path: Path) -> None:
    recipe = lab_recipe(lab, tmp_path)
    lab.kms_lab.put_secret(SECRET, lab.demo.password + "\n")
    out = run(recipe, KMS)
    res = expect(out, "kms.secret_matches", "fail", "model-password-wrong")
    assert "newline" in res.fix.text
    assert_no_secrets(outcome_text(out), lab_secrets(lab))


# --------------------------------------------------------------------------------------------- ClientKey files

INSTANCE = "kst-hzz66a0abcdefe16pckc"
KEY_ID = "KAAP.0123abcd-4567-89ef-0123-456789abcdef"
P12_PASSWORD = "pkcs12-pass-7f3e9a"


def _cert(subject: str, issuer_key: Any, key: Any, *, ca: bool, issuer: str | None = None, days: int = 365) -> Any:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or subject)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _client_key_files(
    tmp_path: Path,
    *,
    ca_is_ca: bool = True,
    ca_instance: str = INSTANCE,
    password: str = P12_PASSWORD,
    shape: dict[str, Any] | None = None,
) -> dict[str, str]:
    """A ClientKey zip's contents as the KMS console gives them, built with cryptography."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert(f"PrivateKmsCA_{ca_instance}", ca_key, ca_key, ca=ca_is_ca)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_cert = _cert(KEY_ID, ca_key, client_key, ca=False, issuer=f"PrivateKmsCA_{ca_instance}")
    p12 = pkcs12.serialize_key_and_certificates(
        KEY_ID.encode(), client_key, client_cert, None, serialization.BestAvailableEncryption(P12_PASSWORD.encode())
    )
    doc = shape if shape is not None else {"KeyId": KEY_ID, "PrivateKeyData": base64.b64encode(p12).decode()}
    d = tmp_path / "clientkey"
    d.mkdir(exist_ok=True)
    files = {
        "client_key_file": d / f"clientKey_{KEY_ID}.json",
        "password_file": d / f"clientKey_{KEY_ID}_Password.txt",
        "ca_file": d / f"PrivateKmsCA_{ca_instance}.pem",
    }
    files["client_key_file"].write_text(json.dumps(doc))
    files["password_file"].write_text(password + "\n")
    files["ca_file"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return {k: str(v) for k, v in files.items()}


def _with_files(files: dict[str, str], instance: str = INSTANCE) -> Any:
    return lambda d: d["answers"]["kms"].update(instance_id=instance, **files)


def test_valid_client_key_files_pass(lab: Any, tmp_path: Path) -> None:
    files = _client_key_files(tmp_path)
    out = run(lab_recipe(lab, tmp_path, _with_files(files)), ["kms.client_key_files"])
    res = expect(out, "kms.client_key_files", "pass")
    text = " ".join(e.observed for e in res.evidence)
    assert "PKCS#12 opens" in text and f"instance {INSTANCE} matches" in text and "CA=True" in text
    p12_blob = json.loads(Path(files["client_key_file"]).read_text())["PrivateKeyData"]
    assert_no_secrets(outcome_text(out), [P12_PASSWORD, p12_blob])


@pytest.mark.parametrize(
    ("variant", "words"),
    [
        ({"password": "wrong-password-1"}, "does not open the ClientKey's PKCS#12"),
        ({"shape": {"KeyID": KEY_ID, "Key": "abc"}}, '"KeyId", "PrivateKeyData"'),
        ({"shape": {"KeyId": KEY_ID, "PrivateKeyData": "%%%not base64%%%"}}, "PrivateKeyData is not base64"),
        ({"ca_is_ca": False}, "not a CA certificate"),
        ({"ca_instance": "kst-otherinstance0001"}, "for KMS instance kst-otherinstance0001"),
    ],
)
def test_client_key_file_mistakes(lab: Any, tmp_path: Path, variant: dict[str, Any], words: str) -> None:
    files = _client_key_files(tmp_path, **variant)
    out = run(lab_recipe(lab, tmp_path, _with_files(files)), ["kms.client_key_files"])
    res = expect(out, "kms.client_key_files", "fail", "kms-client-key-invalid")
    assert words in res.summary
    assert_no_secrets(outcome_text(out), [P12_PASSWORD, variant.get("password", P12_PASSWORD)])


def test_client_key_files_absent_or_unset(lab: Any, tmp_path: Path) -> None:
    out = run(lab_recipe(lab, tmp_path), ["kms.client_key_files"])
    expect(out, "kms.client_key_files", "skip")
    files = {"client_key_file": str(tmp_path / "nope.json"), "password_file": str(tmp_path / "nope.txt")}
    out = run(lab_recipe(lab, tmp_path, _with_files(files)), ["kms.client_key_files"])
    res = expect(out, "kms.client_key_files", "fail", "kms-client-key-invalid")
    assert "cannot read the ClientKey file" in res.summary and "nope.json" in res.summary
