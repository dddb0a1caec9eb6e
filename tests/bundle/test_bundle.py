"""The planted-secrets test: secrets in the recipe's references, an env file, a compose file, key files and the logs
of a real container on the local Docker engine (compose project cai-docker, service oss); none survives anywhere in
the bundle, in any of its encodings, while the diagnostic line (AccessDenied) does. Plus --pseudonymize, collector
failures and the CLI's input errors."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import stat
import string
import subprocess
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from cai_tui.cli.main import main
from cai_tui.recipe import REDACTOR
from tests.targets.docker_lab import docker, ensure_engine, ensure_image

ALNUM = string.ascii_letters + string.digits
HOST_OSS = "oss-cn-beijing-internal.aliyuncs.com"
HOST_TRUSTEE = "alb-example.cn-hangzhou.alb.aliyuncsslb.com"
PUBLIC_IP = "203.0.113.7"
DENIED = "ErrorCode: AccessDenied, Message: The bucket you access does not belong to you."


def rnd(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass
class Planted:
    dir: Path
    recipe: Path
    container: str
    values: dict[str, str] = field(default_factory=dict)  # what must not survive, by what it is
    pem_lines: list[str] = field(default_factory=list)


def forms(value: str) -> set[str]:
    """The value and the encodings a leak could take."""
    raw = value.encode()
    return {
        value,
        quote(value, safe=""),
        quote_plus(value),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    }


def leaks(members: dict[str, bytes], planted: Planted) -> list[str]:
    found = []
    for name, data in members.items():
        text = data.decode("utf-8", "replace")
        for what, value in planted.values.items():
            for form in forms(value):
                if form in text:
                    found.append(f"{name}: {what} ({form[:12]}…)")
        for line in planted.pem_lines:
            if line in text:
                found.append(f"{name}: a private key line")
    return found


def container_logs(members: dict[str, bytes], container: str) -> str:
    key = f"cai-tui-bundle/containers/{container}/logs.txt"
    assert key in members, members["cai-tui-bundle/errors.txt"].decode()
    return members[key].decode()


def read_bundle(path: Path) -> dict[str, bytes]:
    with tarfile.open(path, "r:gz") as tar:
        out = {}
        for m in tar.getmembers():
            assert m.isfile(), m.name
            f = tar.extractfile(m)
            assert f is not None
            out[m.name] = f.read()
        return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Planted]:
    ensure_engine()
    image = ensure_image(tmp_path_factory.mktemp("busybox-image"))
    d = tmp_path_factory.mktemp("planted")
    v = {
        "oss access key id": "LTAI5t" + rnd(18),
        "oss access key secret": rnd(30),
        "kms access key id": "LTAI5t" + rnd(18),
        "kms access key secret": rnd(30),
        "model password": "Pw-" + rnd(20) + "!%x",
        "sts token": "CAIS" + rnd(96, ALNUM + "+/"),
        "env-only api token": rnd(40),
        "env-only db password": rnd(18),
        "log-only access key id": "LTAI5t" + rnd(20),
        "log-only password": rnd(24),
        "jwt": ".".join(
            [
                b64url(b'{"alg":"RS256","typ":"JWT"}'),
                b64url(json.dumps({"sub": rnd(12)}).encode()),
                b64url(os.urandom(48)),
            ]
        ),
    }
    pem_lines = [base64.b64encode(os.urandom(48)).decode() for _ in range(4)]
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "\n".join(pem_lines) + "\n-----END RSA PRIVATE KEY-----\n"
    secrets_dir = d / "secrets"
    secrets_dir.mkdir(mode=0o700)
    for name, value in (("model-password", v["model password"]), ("kms-secret", v["kms access key secret"])):
        (secrets_dir / name).write_text(value + "\n")
    (secrets_dir / "kbs-admin.pem").write_text(pem)
    for f in secrets_dir.iterdir():
        f.chmod(0o600)
    env_file = d / "cai.env"
    db_pw = v["env-only db password"]
    env_file.write_text(
        f"MODEL_OSS_ENDPOINT=https://{HOST_OSS}\n"
        f"MODEL_OSS_ACCESS_KEY_ID={v['oss access key id']}\n"
        f'MODEL_OSS_ACCESS_KEY_SECRET="{v["oss access key secret"]}"\n'
        f"MODEL_OSS_SECURITY_TOKEN='{v['sts token']}'\n"
        f"MODEL_DECRYPTION_PASSWORD={v['model password']}\n"
        f"EXTRA_API_TOKEN={v['env-only api token']}\n"
        f"DB_PASSWORD=\"{db_pw[:9]}\"'{db_pw[9:]}'\n"  # split across quoting
        f"TRUSTEE_URL=http://{HOST_TRUSTEE}/trustee\n"
        "MODEL_KEY_ID=kbs:///default/aliyun/model-decryption-key\n"
    )
    compose = d / "docker-compose.yml"
    compose.write_text(
        "include:\n  - /opt/alibaba/cai-docker/docker-compose.yml\nservices:\n  vllm:\n    environment:\n"
        "      - MODEL_OSS_ACCESS_KEY_SECRET=${MODEL_OSS_ACCESS_KEY_SECRET}\n"
        f"      - HF_TOKEN={v['env-only api token']}\n"
        f"    command: --api-key {v['jwt']}\n"
    )
    recipe = d / "recipe.yaml"
    recipe.write_text(
        f"""schema_version: 1
flow: cai
name: planted
answers:
  model:
    source: local
    local_dir: {d}/model
    encryption_method: gocryptfs
    password: file:{secrets_dir}/model-password
  oss:
    region: cn-beijing
    endpoint: https://{HOST_OSS}
    bucket_path: examplebucket:/qwen-encrypted/
    access_key_id: env:CAI_TEST_OSS_AK_ID
    access_key_secret: env:CAI_TEST_OSS_AK_SECRET
  kms:
    region: cn-hangzhou
    instance_id: kst-hzz66a0exampleke16pckc
    endpoint: 127.0.0.1:9
    secret_name: model-decryption-key
    access_key_id: env:CAI_TEST_KMS_AK_ID
    access_key_secret: file:{secrets_dir}/kms-secret
  trustee:
    url: http://{HOST_TRUSTEE}/trustee
    model_key_id: kbs:///default/aliyun/model-decryption-key
    admin_private_key: file:{secrets_dir}/kbs-admin.pem
  instance:
    public_ip: {PUBLIC_IP}
  service:
    port: 8080
    env_file: {env_file}
    compose_file: {compose}
    cai_compose_file: {d}/no-such-cai-compose.yml
targets:
  workstation: local
  instance: local
"""
    )
    log = (
        f"oss: endpoint https://{HOST_OSS} from {PUBLIC_IP}\n"
        f"oss: using AccessKeyId {v['oss access key id']} secret {v['oss access key secret']}\n"
        f"oss: x-oss-security-token: {v['sts token']}\n"
        f"oss: basic {base64.b64encode(('u:' + v['oss access key secret']).encode()).decode()}\n"
        f"oss: url https://admin:{quote(v['model password'], safe='')}@{HOST_OSS}/bucket\n"
        f"oss: kms {v['kms access key id']} {v['kms access key secret']}\n"
        f"oss: gocryptfs -passfile -> {v['model password']}\n"
        f"oss: found key {v['log-only access key id']} in ~/.ossutilconfig\n"
        f"oss: DB_PASSWORD={v['log-only password']}\n"
        f"oss: bearer token {v['jwt']}\n"
        f"{pem}"
    )
    container = f"caitui-bundle-{uuid.uuid4().hex[:8]}-cai-docker-oss-1"
    labels = ["--label", "com.docker.compose.project=cai-docker", "--label", "com.docker.compose.service=oss"]
    r = subprocess.run(
        ["docker", "run", "-i", "--name", container, *labels, image, "sh", "-c", f"cat; echo '{DENIED}' >&2; exit 3"],
        input=log,
        capture_output=True,
        text=True,
        timeout=60,
    )
    try:
        assert r.returncode == 3, r.stderr
        # the planted values really are where the collectors look: otherwise the test below proves nothing
        logs = docker("logs", container).stdout
        assert v["oss access key secret"] in logs and v["jwt"] in logs and pem_lines[0] in logs
        assert v["sts token"] in env_file.read_text()
        yield Planted(d, recipe, container, v, pem_lines)
    finally:
        docker("rm", "-f", container, check=False)


@pytest.fixture
def env(planted: Planted, monkeypatch: pytest.MonkeyPatch) -> Planted:
    monkeypatch.setenv("CAI_TEST_OSS_AK_ID", planted.values["oss access key id"])
    monkeypatch.setenv("CAI_TEST_OSS_AK_SECRET", planted.values["oss access key secret"])
    monkeypatch.setenv("CAI_TEST_KMS_AK_ID", planted.values["kms access key id"])
    REDACTOR.clear()  # the bundle must find the values itself, not rely on an earlier test's registrations
    return planted


def make(out: Path, *args: str, recipe: Path | None = None) -> int:
    argv = ["bundle", "-o", str(out), "--timeout", "2", *args]
    if recipe is not None:
        argv += ["--recipe", str(recipe)]
    return main(argv)


def test_no_planted_secret_survives(env: Planted, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cai-diagnostic.tar.gz"
    assert make(out, recipe=env.recipe) == 0
    members = read_bundle(out)
    # the scan can fail: it finds a planted value in a copy left unscrubbed
    assert leaks({"control": env.values["jwt"].encode()}, env) and leaks({"control": env.pem_lines[2].encode()}, env)
    assert leaks(members, env) == []
    printed = capsys.readouterr().out
    assert f"{out} (" in printed and "removed: " in printed and "known-secret" in printed
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    top = "cai-tui-bundle/"
    names = set(members)
    for want in (
        "README.txt",
        "errors.txt",
        "versions.json",
        "doctor.json",
        "files/recipe.yaml",
        "files/cai.env",
        "files/docker-compose.yml",
        "facts/uname.txt",
        "facts/proc-cmdline.txt",
        "facts/os-release.txt",
    ):
        assert top + want in names, want
    assert not any("no-such-cai-compose" in n or n.endswith("cai-docker-compose.yml") for n in names)
    logs = container_logs(members, env.container)
    assert DENIED in logs  # the diagnosis survives the scrubbing
    assert "<redacted:" in logs and f"https://{HOST_OSS}" in logs  # not pseudonymized unless asked
    state = json.loads(members[f"{top}containers/{env.container}/state.json"])
    assert state["exit_code"] == 3 and state["status"] == "exited" and state["service"] == "oss"
    assert state["restart_count"] == 0

    env_text = members[top + "files/cai.env"].decode()
    assert 'MODEL_OSS_ACCESS_KEY_SECRET="<redacted:known-secret>"' in env_text  # the key is kept
    assert "EXTRA_API_TOKEN=<redacted:env-secret>" in env_text and "DB_PASSWORD=<redacted:env-secret>" in env_text
    assert "MODEL_KEY_ID=kbs:///default/aliyun/model-decryption-key" in env_text  # not a secret: kept
    recipe_text = members[top + "files/recipe.yaml"].decode()
    assert "access_key_id: env:CAI_TEST_OSS_AK_ID" in recipe_text  # references are kept, they are no secrets
    doctor = json.loads(members[top + "doctor.json"])
    assert doctor["schema"] == "cai-tui/doctor/v1" and doctor["checks"]
    assert json.loads(members[top + "versions.json"])["target"]["name"] == "local"
    readme = members[top + "README.txt"].decode()
    for category in ("known-secret", "access-key-id", "private-key", "env-secret"):
        assert f"  {category}: " in readme, category
    assert "no-such-cai-compose.yml does not exist" in readme


def test_pseudonymize(env: Planted, tmp_path: Path) -> None:
    out = tmp_path / "b.tar.gz"
    assert make(out, "--pseudonymize", recipe=env.recipe) == 0
    mapping_file = tmp_path / "b.tar.gz.mapping.json"
    assert stat.S_IMODE(mapping_file.stat().st_mode) == 0o600
    mapping = json.loads(mapping_file.read_text())
    members = read_bundle(out)
    assert not any("mapping" in n for n in members)
    assert leaks(members, env) == []
    oss, trustee, ip = mapping["hosts"][HOST_OSS], mapping["hosts"][HOST_TRUSTEE], mapping["ipv4"][PUBLIC_IP]
    assert oss.startswith("host-") and ip.startswith("10.0.0.") and len({oss, trustee}) == 2
    everything = b"\n".join(members.values()).decode("utf-8", "replace")
    for original in (HOST_OSS, HOST_TRUSTEE, PUBLIC_IP):
        assert original not in everything, original
    for original in (*mapping["ipv4"], *mapping["hosts"]):  # e.g. this machine's name: as a word
        assert not re.search(rf"(?i)(?<![\w.-]){re.escape(original)}(?![\w-])", everything), original
    top = "cai-tui-bundle/"
    logs = container_logs(members, env.container)
    recipe_text = members[top + "files/recipe.yaml"].decode()
    env_text = members[top + "files/cai.env"].decode()
    # the same pseudonym for the same host in every file
    assert f"endpoint: https://{oss}" in recipe_text and f"https://{oss} from {ip}" in logs
    assert f"MODEL_OSS_ENDPOINT=https://{oss}" in env_text and f"TRUSTEE_URL=http://{trustee}/trustee" in env_text
    assert f"public_ip: {ip}" in recipe_text
    assert "endpoint: 127.0.0.1:9" in recipe_text  # loopback kept
    assert DENIED in logs


def test_collector_failure_lands_in_errors(env: Planted, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker-here.sock")
    out = tmp_path / "nodocker.tar.gz"
    assert make(out, recipe=env.recipe) == 0
    members = read_bundle(out)
    errors = members["cai-tui-bundle/errors.txt"].decode()
    assert "containers: cannot ask the local Docker engine" in errors
    assert not any("/containers/" in n for n in members)
    assert "cai-tui-bundle/doctor.json" in members and leaks(members, env) == []


def test_sysroot_target_has_no_engine_and_unresolved_refs_are_noted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CAI_TEST_OSS_AK_ID", raising=False)
    monkeypatch.delenv("CAI_TEST_OSS_AK_SECRET", raising=False)
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "schema_version: 1\nflow: cai\nname: r\nanswers:\n  oss:\n    region: cn-beijing\n"
        "    endpoint: https://oss-cn-beijing.aliyuncs.com\n    bucket_path: bkt:/p/\n"
        "    access_key_id: env:CAI_TEST_OSS_AK_ID\n    access_key_secret: env:CAI_TEST_OSS_AK_SECRET\n"
    )
    out = tmp_path / "s.tar.gz"
    assert make(out, "--target", f"sysroot:{rootfs}", recipe=recipe) == 0
    members = read_bundle(out)
    assert "containers: not collected" in members["cai-tui-bundle/errors.txt"].decode()
    readme = members["cai-tui-bundle/README.txt"].decode()
    assert "answers.oss.access_key_id — environment variable CAI_TEST_OSS_AK_ID is not set" in readme


def test_input_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert make(tmp_path / "missing-dir/x.tar.gz") == 2
    assert "does not exist" in capsys.readouterr().err
    assert make(tmp_path) == 2
    assert make(tmp_path / "x.tar.gz", "--target", "bogus://nowhere") == 2
    assert "not a target" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema_version: 1\nflow: cai\nname: x\nanswers:\n  oss:\n    access_key_secret: hunter2hunter2\n")
    assert make(tmp_path / "x.tar.gz", recipe=bad) == 2
    assert "hunter2hunter2" not in capsys.readouterr().err
    assert not (tmp_path / "x.tar.gz").exists()
