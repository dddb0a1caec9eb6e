"""KATA-4.1–4.3 on the kata lab: plugins present or the documented commands, the network file rendered with the
recipe's values (backup, undo byte for byte), a subnet that overlaps a host route or another CNI network refused,
and the plans' command lines and undos."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cai_tui.cli.main import app
from cai_tui.lab.kata.cni import lab_cni_answers, remove_lab_network
from tests.helpers import run_cli


def _recipe(path: Path, cni: dict[str, Any]) -> Path:
    doc = {"schema_version": 1, "flow": "kata-virtcca", "name": "cni-lab", "answers": {"cni": cni}}
    path.write_text(json.dumps(doc, indent=1))
    return path


@pytest.fixture
def cni_lab(tmp_path: Path) -> Iterator[dict[str, Any]]:
    answers = lab_cni_answers(tmp_path)
    state = tmp_path / "state"
    env = {"CAI_TUI_STATE_DIR": str(state)}
    try:
        yield {"answers": answers, "recipe": _recipe(tmp_path / "r.yaml", answers), "env": env, "state": state}
    finally:
        remove_lab_network(answers)


def _cli(lab: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """``cai-tui kata cni ARGS --recipe R`` in this process (fast; the CLI's exit code, stdout and stderr)."""
    r = CliRunner(env=lab["env"]).invoke(app, ["kata", "cni", *args, "--recipe", str(lab["recipe"])])
    return subprocess.CompletedProcess(args, r.exit_code, r.stdout, r.stderr)


def _real_cli(lab: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """The same as a separate process, as the stage engine runs it."""
    return run_cli("kata", "cni", *args, "--recipe", str(lab["recipe"]), env=lab["env"])


def test_install_steps_done_when_bin_dir_holds_plugins(cni_lab: dict[str, Any]) -> None:
    r = _cli(cni_lab, "install-plugins")
    assert r.returncode == 0, r.stderr
    assert "/usr/lib/cni already holds the CNI plugins (bridge, host-local, loopback)" in r.stdout
    r = _cli(cni_lab, "install-cnitool")
    assert r.returncode == 0, r.stderr
    assert "cnitool is not installed" in r.stdout and "invokes the CNI plugins directly" in r.stdout
    assert "go mod tidy" in r.stderr  # the documented build, for whoever wants cnitool


def test_install_plugins_missing_names_the_documented_commands(cni_lab: dict[str, Any], tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    recipe = _recipe(tmp_path / "empty.yaml", {**cni_lab["answers"], "bin_dir": str(empty)})
    r = _real_cli({**cni_lab, "recipe": recipe}, "install-plugins")
    assert r.returncode == 3  # manual, as the other kata doers
    assert f"manual: {empty} lacks the CNI plugin(s) bridge, host-local, loopback" in r.stderr
    url = "https://github.com/containernetworking/plugins/releases/download/v1.6.0/cni-plugins-linux-arm64-v1.6.0.tgz"
    assert f"wget {url} && mkdir -p {empty} " in r.stderr
    assert f"tar -zxvf cni-plugins-linux-arm64-v1.6.0.tgz -C {empty}" in r.stderr
    from cai_tui.actions.registry import get
    from cai_tui.recipe import load_recipe

    (step,) = get("cni.install_plugins").plan(load_recipe(recipe))  # type: ignore[union-attr]
    assert step.manual.startswith(f"{empty} lacks bridge, host-local, loopback; cai-tui downloads nothing")
    assert step.argv[:2] == ["sh", "-c"] and step.argv[2].startswith(f"wget {url} && ")
    assert "Traceback" not in r.stderr


def test_write_conf_renders_the_recipe_and_undo_removes_it(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    path = Path(a["conf_dir"]) / f"{a['network_name']}.conf"
    plan = _cli(cni_lab, "write-conf", "--plan")
    assert plan.returncode == 0 and not path.exists()
    assert f"+++ {path}" in plan.stdout and f'+        "subnet": "{a["subnet"]}"' in plan.stdout
    r = _cli(cni_lab, "write-conf")
    assert r.returncode == 0, r.stderr
    assert f"{path} written" in r.stdout
    doc = json.loads(path.read_text())
    assert doc == {
        "cniVersion": "0.4.0",
        "name": a["network_name"],
        "type": "bridge",
        "bridge": a["bridge"],
        "isDefaultGateway": True,
        "forceAddress": False,
        "ipMasq": True,
        "hairpinMode": True,
        "ipam": {"type": "host-local", "subnet": a["subnet"]},
    }
    assert path.stat().st_mode & 0o777 == 0o644
    again = _cli(cni_lab, "write-conf")
    assert again.returncode == 0 and "is up to date" in again.stdout
    u = _cli(cni_lab, "undo", "--what", "conf")
    assert u.returncode == 0, u.stderr
    assert f"{path} removed (it did not exist before)" in u.stdout
    assert not path.exists()
    assert _cli(cni_lab, "undo").stdout.strip() == "nothing to undo"


def test_write_conf_makes_the_folder_and_undo_removes_it(cni_lab: dict[str, Any], tmp_path: Path) -> None:
    deep = tmp_path / "etc" / "cni" / "net.d"
    lab = {**cni_lab, "recipe": _recipe(tmp_path / "deep.yaml", {**cni_lab["answers"], "conf_dir": str(deep)})}
    assert _cli(lab, "write-conf").returncode == 0
    assert (deep / f"{cni_lab['answers']['network_name']}.conf").is_file()
    u = _cli(lab, "undo")
    assert u.returncode == 0 and f"{tmp_path / 'etc'} removed (created for the file, now empty)" in u.stdout
    assert not (tmp_path / "etc").exists()


def test_write_conf_keeps_the_users_file_and_undo_restores_it(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    path = Path(a["conf_dir"]) / f"{a['network_name']}.conf"
    original = b'{"cniVersion": "0.4.0", "name": "%s", "type": "bridge",\r\n "ipam": {}}' % a["network_name"].encode()
    path.write_bytes(original)
    os.chmod(path, 0o600)
    r = _cli(cni_lab, "write-conf")
    assert r.returncode == 0, r.stderr
    assert f"kept as {path}.bak" in r.stderr and f"{path} changed" in r.stdout
    assert Path(f"{path}.bak").read_bytes() == original
    assert _cli(cni_lab, "write-conf").returncode == 0  # a second write keeps the first backup (the user's file)
    assert Path(f"{path}.bak").read_bytes() == original
    u = _cli(cni_lab, "undo")
    assert u.returncode == 0 and f"{path} restored from {path}.bak" in u.stdout
    assert path.read_bytes() == original and not Path(f"{path}.bak").exists()


def test_subnet_overlapping_a_host_route_is_refused(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    dummy = f"caid{secrets.token_hex(3)}"
    gw = a["subnet"].replace(".0/24", ".77/24")
    subprocess.run(["ip", "link", "add", dummy, "type", "bridge"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", gw, "dev", dummy], check=True)
        subprocess.run(["ip", "link", "set", dummy, "up"], check=True)
        r = _cli(cni_lab, "write-conf")
        assert r.returncode == 2
        assert f"the subnet {a['subnet']} clashes with the host's route {a['subnet']} dev {dummy}" in r.stderr
        assert f"address {gw} on {dummy}" in r.stderr
        assert "pick a private range no route or interface uses for answers.cni.subnet" in r.stderr
        assert not (Path(a["conf_dir"]) / f"{a['network_name']}.conf").exists()
    finally:
        subprocess.run(["ip", "link", "del", dummy], check=False)


def test_subnet_or_name_of_another_cni_network_is_refused(cni_lab: dict[str, Any]) -> None:
    a = cni_lab["answers"]
    other = Path(a["conf_dir"]) / "10-other.conflist"
    net = {
        "cniVersion": "1.0.0",
        "name": "other",
        "plugins": [{"type": "bridge", "ipam": {"type": "host-local", "ranges": [[{"subnet": a["subnet"]}]]}}],
    }
    other.write_text(json.dumps(net))
    r = _cli(cni_lab, "write-conf")
    assert r.returncode == 2
    assert f"{other} (network other) uses {a['subnet']}, which overlaps {a['subnet']}" in r.stderr
    other.write_text(json.dumps({**net, "name": a["network_name"], "plugins": [{"type": "bridge"}]}))
    r = _cli(cni_lab, "write-conf")
    assert r.returncode == 2
    assert f"{other} defines the network {a['network_name']} too" in r.stderr


def test_plans_name_the_commands_and_their_undo(cni_lab: dict[str, Any]) -> None:
    from cai_tui.actions.registry import get
    from cai_tui.recipe import load_recipe

    loaded = load_recipe(cni_lab["recipe"])
    recipe = str(cni_lab["recipe"])
    want = {
        "cni.install_plugins": ("install-plugins", None),
        "cni.install_cnitool": ("install-cnitool", None),
        "cni.write_conf": ("write-conf", "conf"),
        "cni.create_netns": ("create-netns", "netns"),
        "cni.attach": ("attach", "attach"),
    }
    for action, (sub, undo) in want.items():
        spec = get(action)
        assert spec is not None and spec.flow == "kata-virtcca"
        (step,) = spec.plan(loaded)
        assert step.argv == ["cai-tui", "kata", "cni", sub, "--recipe", recipe]
        assert step.where == "host"
        if undo is None:
            assert step.changes.startswith("nothing") and step.undo == ()
        else:
            assert not step.changes.startswith("nothing")
            assert step.undo == ("cai-tui", "kata", "cni", "undo", "--what", undo, "--recipe", recipe)
    a = cni_lab["answers"]
    (attach,) = get("cni.attach").plan(loaded)  # type: ignore[union-attr]
    assert a["bridge"] in attach.changes and a["subnet"] in attach.changes
