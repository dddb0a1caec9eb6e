"""The lab's demo seed end to end, with the real clients only: oss2, the KMS SDK, KbsClient, gocryptfs."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
import struct
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cai_tui.gocryptfs import open_cipherdir
from cai_tui.lab.demo import DEMO_PREFIX, demo_model_files
from cai_tui.lab.orchestrator import CREDENTIAL_KEYS, READY_KEYS
from cai_tui.recipe import CaiRecipe, SecretRef, load_recipe, resolve_secret


def download_prefix(bucket: Any, prefix: str, dest: Path) -> list[str]:
    """Fetch every object under ``prefix`` into ``dest`` (keys relative to the prefix); returns the relative keys."""
    import oss2

    got = []
    for obj in oss2.ObjectIterator(bucket, prefix=prefix):
        rel = obj.key[len(prefix) :]
        assert rel and ".." not in rel.split("/"), obj.key
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        bucket.get_object_to_file(obj.key, str(target))
        got.append(rel)
    return sorted(got)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ready_info_and_credentials_file(lab: Any) -> None:
    info = lab.ready_info()
    assert tuple(info)[: len(READY_KEYS)] == READY_KEYS
    assert info["event"] == "ready"
    for key in ("trustee_url", "oss_endpoint", "admin_url"):
        assert info[key].startswith("http://127.0.0.1:"), info[key]
    assert info["kms_endpoint"].startswith("127.0.0.1:")
    assert info["trustee_url"].endswith("/trustee")

    creds_path = Path(info["credentials"])
    assert mode(creds_path) == 0o600
    creds = json.loads(creds_path.read_text())
    missing = [k for k in CREDENTIAL_KEYS if not creds.get(k)]
    assert not missing, missing
    assert creds["oss_bucket"] == "lab-models"
    assert creds["model_prefix"] == DEMO_PREFIX
    assert creds["kms_secret_name"] == "model-decryption-key"
    assert creds["oss_region"] == creds["kms_region"] == "cn-lab"
    for key in ("model_password_file", "kbs_admin_private_key_path"):
        p = Path(creds[key])
        assert p.is_file() and mode(p) == 0o600, (key, oct(mode(p)))
        assert p.parent == lab.state_dir
    assert Path(creds["kbs_admin_private_key_path"]).read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    # Long-term key and STS key are different principals; the token is a real-looking one.
    assert creds["oss_sts_access_key_id"].startswith("STS.") and creds["oss_sts_token"].startswith("CAIS")
    assert creds["oss_access_key_id"] != creds["oss_sts_access_key_id"]


def test_recipe_is_valid_and_its_secret_references_resolve(lab: Any) -> None:
    creds = json.loads(lab.credentials_path.read_text())
    loaded = load_recipe(lab.recipe_path)
    assert mode(lab.recipe_path) == 0o600
    recipe = loaded.recipe
    assert isinstance(recipe, CaiRecipe) and recipe.flow == "cai"
    a = recipe.answers
    assert a.oss.endpoint == lab.oss_endpoint and a.kms.endpoint == lab.kms_endpoint
    assert a.trustee.url == lab.trustee_url and a.trustee.protocol_version == "0.1.0"
    assert a.oss.bucket_path == f"lab-models:/{DEMO_PREFIX}"
    assert a.trustee.model_key_id == "kbs:///default/aliyun/model-decryption-key"
    assert a.model.local_dir and Path(a.model.local_dir) == lab.demo.model_dir
    assert a.model.cipher_dir and Path(a.model.cipher_dir) == lab.demo.cipher_dir
    refs: dict[str, SecretRef | None] = {
        "oss_access_key_id": a.oss.access_key_id,
        "oss_access_key_secret": a.oss.access_key_secret,
        "kms_access_key_id": a.kms.access_key_id,
        "kms_access_key_secret": a.kms.access_key_secret,
    }
    for name, ref in refs.items():
        assert ref is not None and ref.scheme == "file", (name, ref)
        path = Path(ref.target)
        assert path.parent == lab.state_dir and mode(path) == 0o600
        assert resolve_secret(ref, field=name) == creds[name]
    assert a.model.password is not None and a.trustee.admin_private_key is not None
    password = resolve_secret(a.model.password, field="model.password")
    assert password == Path(creds["model_password_file"]).read_text() == lab.demo.password
    pem = resolve_secret(a.trustee.admin_private_key, field="trustee.admin_private_key")
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")


def test_demo_model_is_a_real_model_directory(lab: Any) -> None:
    model_dir = lab.demo.model_dir
    files = sorted(p.name for p in model_dir.iterdir())
    assert files == sorted(demo_model_files())
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        json.loads((model_dir / name).read_text())
    config = json.loads((model_dir / "config.json").read_text())
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    assert tokenizer["model"]["type"] == "BPE"
    ids = list(tokenizer["model"]["vocab"].values()) + [t["id"] for t in tokenizer["added_tokens"]]
    assert len(set(ids)) == len(ids) and max(ids) < config["vocab_size"]

    raw = (model_dir / "model.safetensors").read_bytes()
    assert 200_000 < len(raw) < 1_000_000
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    assert header.pop("__metadata__") == {"format": "pt"}
    data_len = len(raw) - 8 - n
    spans = sorted(tuple(t["data_offsets"]) for t in header.values())
    assert spans[0][0] == 0 and spans[-1][1] == data_len
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans)), "tensors must be contiguous"
    for name, t in header.items():
        count = 1
        for d in t["shape"]:
            count *= d
        assert t["dtype"] == "F16" and t["data_offsets"][1] - t["data_offsets"][0] == 2 * count, name
    emb = header["model.embed_tokens.weight"]
    assert emb["shape"] == [config["vocab_size"], config["hidden_size"]]
    start = 8 + n + emb["data_offsets"][0]
    values = struct.unpack(f"<{emb['shape'][1]}e", raw[start : start + 2 * emb["shape"][1]])
    assert all(0 < abs(v) <= 1 for v in values)


def test_demo_end_to_end_with_the_real_clients(lab: Any, lab_clients: Any, tmp_path: Path) -> None:
    clients = lab_clients(lab.credentials_path)
    bucket = clients.oss_bucket()

    # OSS: the recipe's credentials see the encrypted model under the demo prefix.
    keys = download_prefix(bucket, DEMO_PREFIX, tmp_path / "cipher")
    assert "gocryptfs.conf" in keys and "gocryptfs.diriv" in keys
    assert len(keys) == len(demo_model_files()) + 2
    # STS credentials work too.
    assert bucket.object_exists(DEMO_PREFIX + "gocryptfs.conf")
    assert clients.oss_bucket(sts=True).object_exists(DEMO_PREFIX + "gocryptfs.conf")

    # KMS: the SDK reads the password; the Trustee hands out the same value after attestation.
    password = clients.kms_secret()
    assert password == lab.demo.password and len(password) >= 32
    assert clients.kbs_model_key() == password.encode()

    # The password decrypts what came down from OSS (native reader), and the files are the demo model.
    cd = open_cipherdir(tmp_path / "cipher", password.encode())
    got = {rel: stream.read() for rel, stream in cd.iter_files()}
    assert got == demo_model_files()
    assert got == {p.name: p.read_bytes() for p in lab.demo.model_dir.iterdir()}


def test_the_real_gocryptfs_mounts_the_downloaded_cipherdir(lab: Any, lab_clients: Any, tmp_path: Path) -> None:
    exe, fusermount = shutil.which("gocryptfs"), shutil.which("fusermount3") or shutil.which("fusermount")
    if exe is None or fusermount is None or not os.path.exists("/dev/fuse"):
        pytest.fail(
            "the gocryptfs binary, fusermount3 and /dev/fuse are required (CI installs them: "
            "apt-get install -y gocryptfs fuse3)",
            pytrace=False,
        )
    clients = lab_clients(lab.credentials_path)
    cipher, mnt = tmp_path / "cipher", tmp_path / "mnt"
    download_prefix(clients.oss_bucket(), DEMO_PREFIX, cipher)
    passfile = tmp_path / "passfile"
    passfile.write_text(clients.kms_secret() + "\n")
    passfile.chmod(0o600)
    mnt.mkdir()
    rc = subprocess.run(
        [exe, "-q", "-passfile", str(passfile), "--", str(cipher), str(mnt)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
    ).returncode
    try:
        assert rc == 0, f"gocryptfs could not mount the lab's cipherdir (exit {rc})"
        got = {p.name: p.read_bytes() for p in mnt.iterdir()}
        assert got == demo_model_files()
    finally:
        subprocess.run([fusermount, "-u", str(mnt)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_a_damaged_seed_is_replaced_at_the_next_start(tmp_path: Path, lab_clients: Any) -> None:
    from cai_tui.lab.orchestrator import Lab

    state = tmp_path / "state"
    with Lab(state_dir=state) as first:
        old_password = first.demo.password
        old_bucket = lab_clients(first.credentials_path).oss_bucket()
        old_bucket.put_object(DEMO_PREFIX + "stray-object", b"not part of the demo")
    with Lab(state_dir=state) as again:
        assert again.demo.reused and again.demo.password == old_password
        assert not lab_clients(again.credentials_path).oss_bucket().object_exists(DEMO_PREFIX + "stray-object")
    victim = next(p for p in (state / "demo-cipher").iterdir() if not p.name.startswith("gocryptfs."))
    with open(victim, "ab") as f:
        f.write(b"\0")  # a damaged cipher file: the seed is redone with a new password
    with Lab(state_dir=state) as lab:
        assert not lab.demo.reused and lab.demo.password != old_password
        clients = lab_clients(lab.credentials_path)
        assert clients.kms_secret() == lab.demo.password
        assert clients.kbs_model_key() == lab.demo.password.encode()
        keys = download_prefix(clients.oss_bucket(), DEMO_PREFIX, tmp_path / "cipher")
        assert len(keys) == len(demo_model_files()) + 2
        cd = open_cipherdir(tmp_path / "cipher", lab.demo.password.encode())
        assert {rel: s.read() for rel, s in cd.iter_files()} == demo_model_files()
