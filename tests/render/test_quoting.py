"""Hostile values (spaces, quotes, ``$(...)``, backticks) stay one literal argument in every generated shell line.

Each script is checked with ``bash -n``, split back with ``shlex``, and then really run by bash with stub programs
(docker, helm, kubectl, ctr, python3) that record their argv: the recorded arguments must be exactly the values,
and the ``$(touch …)`` planted in them must never have run.
"""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from cai_tui.render import get
from tests.render.conftest import with_answers

STUBS = ("docker", "helm", "kubectl", "ctr", "python3")
STUB = """#!/bin/bash
{ printf '%s\\0' "$(basename "$0")" "$@"; printf '\\036'; } >> "$ARGV_LOG"
"""


def evil(tmp: Path) -> str:
    return f"a b'c\"d $(touch {tmp}/pwned) `touch {tmp}/pwned2` ${{HOME}}"


@pytest.fixture
def sandbox(tmp_path: Path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in STUBS:
        p = bin_dir / name
        p.write_text(STUB)
        p.chmod(p.stat().st_mode | stat.S_IXUSR)
    home = tmp_path / "home"
    home.mkdir()
    return tmp_path, bin_dir, home


def run_script(text: str, sandbox, *args: str) -> list[list[str]]:
    tmp, bin_dir, home = sandbox
    script = tmp / "script.sh"
    script.write_text(text)
    check = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    log = tmp / "argv.log"
    log.write_bytes(b"")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(home), "ARGV_LOG": str(log), "VFIO": "/dev/vfio/7"}
    proc = subprocess.run(["bash", str(script), *args], capture_output=True, text=True, env=env, cwd=tmp, timeout=30)
    assert proc.returncode == 0, proc.stderr
    calls = [rec for rec in log.read_bytes().split(b"\x1e") if rec]
    assert not (tmp / "pwned").exists() and not (tmp / "pwned2").exists(), "a planted command ran"
    return [[a.decode() for a in rec.split(b"\0")[:-1]] for rec in calls]


def command_words(text: str) -> list[list[str]]:
    """The script's commands (continuations joined, comments dropped), each split back with shlex."""
    joined = text.replace(" \\\n", " ")
    return [shlex.split(ln) for ln in joined.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


@pytest.fixture
def hostile_cai(cai_full, sandbox):
    tmp = sandbox[0]
    e = evil(tmp)
    return e, with_answers(
        cai_full,
        {
            "service": {"mount_point": f"/srv/{e}", "vllm_image": f"reg/img:{e}", "port": 8081},
            "tng": {"image": f"reg/tng {e}", "version": "1.0.3"},
            "trustee": {
                "url": f"http://alb.example/tr'$(touch%20{tmp}/pwned)",
                "policy": f"pol {e}",
                "helm": {"release": "trustee", "namespace": "default"},
            },
            "kms": {
                "client_key_file": f"~/kms/{e}.json",
                "password_file": f"/abs/{e}.txt",
                "ca_file": f"~/{e}.pem",
            },
        },
    )


def test_vllm_run(hostile_cai, sandbox) -> None:
    e, recipe = hostile_cai
    text = get("vllm-run").render(recipe).text
    expected = [
        "docker",
        "run",
        "--rm",
        "--net",
        "host",
        "-v",
        f"/srv/{e}:/srv/{e}",
        "--gpus",
        "all",
        f"reg/img:{e}",
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        f"--model=/srv/{e}",
        "--trust-remote-code",
        "--port",
        "8081",
    ]
    assert command_words(text)[-1] == expected
    assert run_script(text, sandbox) == [expected]


def test_tng_client(hostile_cai, sandbox) -> None:
    import json

    e, recipe = hostile_cai
    text = get("tng-client").render(recipe).text
    [call] = run_script(text, sandbox)
    assert call[:5] == ["docker", "run", "--rm", "--network=host", f"reg/tng {e}:1.0.3"]
    assert call[5:8] == ["tng", "launch", "--config-content"] and len(call) == 9
    config = json.loads(call[8])
    verify = config["add_ingress"][0]["verify"]
    assert verify["policy_ids"] == [f"pol {e}"]
    assert verify["as_addr"] == f"http://alb.example/tr'$(touch%20{sandbox[0]}/pwned)/as/"


def test_helm_install(hostile_cai, sandbox) -> None:
    e, recipe = hostile_cai
    text = get("helm-install").render(recipe).text
    calls = run_script(text, sandbox)
    home = sandbox[2]
    install = next(c for c in calls if c[:2] == ["helm", "install"])
    assert install == [
        "helm",
        "install",
        "trustee",
        "trustee/trustee",
        "--version",
        "1.0.0",
        "--set",
        "regionId=cn-hangzhou",
        "--set",
        "kbs.aliyunKms.enabled=true",
        "--set",
        "kbs.aliyunKms.kmsIntanceId=kst-hzz66a0exampleke16pckc",
        "--set-file",
        f"kbs.aliyunKms.clientKey={home}/kms/{e}.json",
        "--set-file",
        f"kbs.aliyunKms.password=/abs/{e}.txt",
        "--set-file",
        f"kbs.aliyunKms.certPem={home}/{e}.pem",
        "--namespace",
        "default",
    ]
    assert ["kubectl", "get", "AlbConfig", "alb", "-o", "jsonpath={.status.loadBalancer.dnsname}"] in calls


def test_helm_refuses_a_comma_path(cai_full) -> None:
    from cai_tui.render import RenderError

    recipe = with_answers(cai_full, {"kms": {"ca_file": "/a,b.pem"}})
    with pytest.raises(RenderError, match="ca_file"):
        get("helm-install").render(recipe)


def test_alb_acl(hostile_cai, sandbox) -> None:
    _, recipe = hostile_cai
    calls = run_script(get("alb-acl").render(recipe).text, sandbox)
    assert calls == [
        [
            "kubectl",
            "get",
            "ing",
            "--namespace",
            "default",
            "kbs-ingress",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].hostname}",
        ]
    ]


@pytest.fixture
def hostile_kata(kata_seed, sandbox):
    e = evil(sandbox[0])
    return e, with_answers(
        kata_seed,
        {
            "image": {"containerd_ref": f"docker.io/library/x:{e}"},
            "container": {"shell": f"/bin/{e}"},
            "serve": {"model": f"m/{e}", "served_name": f"name {e}", "host": "0.0.0.0"},
        },
    )


def test_ctr_run(hostile_kata, sandbox) -> None:
    e, recipe = hostile_kata
    expected = [
        "ctr",
        "--debug",
        "run",
        "--runtime",
        "io.containerd.kata.v2",
        "--device",
        "/dev/vfio/81",
        "-t",
        "--with-ns=network:/var/run/netns/vllmnet",
        f"docker.io/library/x:{e}",
        "arch",
        f"/bin/{e}",
    ]
    text = get("ctr-run").render(recipe).text
    assert command_words(text)[-1] == expected
    assert run_script(text, sandbox) == [expected]
    # without a known IOMMU group the line takes $VFIO (set by gpu.sh's output)
    no_group = with_answers(recipe, {"gpu": {"iommu_group": None}})
    assert run_script(get("ctr-run").render(no_group).text, sandbox)[0][6] == "/dev/vfio/7"


def test_vllm_serve(hostile_kata, sandbox) -> None:
    e, recipe = hostile_kata
    [call] = run_script(get("vllm-serve").render(recipe).text, sandbox)
    assert call == [
        "python3",
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        f"m/{e}",
        "--trust-remote-code",
        "--host",
        "0.0.0.0",
        "--port",
        "8000",
        "--served-model-name",
        f"name {e}",
        "--gpu-memory-utilization",
        "0.95",
    ]


def test_gpu_bind_script_parses_and_quotes_the_bdf(kata_seed, sandbox) -> None:
    tmp = sandbox[0]
    for recipe in (kata_seed, with_answers(kata_seed, {"gpu": {"bdf": "0000:81:00.0"}})):
        text = get("gpu-bind-script").render(recipe).text
        path = tmp / "gpu.sh"
        path.write_text(text)
        assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
        assert "driver_override" in text and "undo)" in text and "drivers_probe" in text
    assert "BDF=0000:81:00.0" in text
    # an unknown sub-command is refused before anything touches sysfs
    proc = subprocess.run(
        ["bash", str(path), "bogus"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=10
    )
    assert proc.returncode == 2 and "usage" in proc.stderr
    assert os.listdir(tmp / "home") == []
