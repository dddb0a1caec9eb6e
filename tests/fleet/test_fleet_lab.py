"""The fleet lab (cai_tui.lab.fleet) with the real components: OpenSSH's sshd and ssh, and the real Ansible."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cai_tui.lab.fleet import Fleet, FleetError, start_fleet

VENV_BIN = Path(sys.executable).parent
BAD_DOCKER = "unix:///nonexistent.sock"


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = start_fleet(tmp_path / "fleet", 3, extra={"host02": [f"SetEnv DOCKER_HOST={BAD_DOCKER}"]})
    try:
        yield f
    finally:
        f.stop()
        assert not any(h.running for h in f.hosts)
        assert sshd_pids_under(tmp_path) == []


def ssh(fleet: Fleet, host: str, *command: str, known_hosts: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*fleet.ssh_argv(host, known_hosts=known_hosts), *command], capture_output=True, text=True, timeout=20
    )


def listening_addresses(port: int) -> list[str]:
    """The local addresses (hex, as /proc/net/tcp{,6} write them) of LISTEN sockets on ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            addr, hexport = fields[1].split(":")
            if int(hexport, 16) == port and fields[3] == "0A":
                found.append(addr)
    return found


def test_each_host_is_a_real_sshd_on_loopback_with_its_own_key_and_environment(fleet: Fleet) -> None:
    assert [h.name for h in fleet.hosts] == ["host01", "host02", "host03"]
    assert len({h.port for h in fleet.hosts}) == 3
    assert len({h.known_hosts_line().split()[2] for h in fleet.hosts}) == 3  # each host its own key
    assert fleet.known_hosts.read_text() == "".join(h.known_hosts_line() for h in fleet.hosts)
    for h in fleet.hosts:
        assert listening_addresses(h.port) == ["0100007F"]  # 127.0.0.1 only, no IPv6, no wildcard
        assert ssh(fleet, h.name, "true").returncode == 0
        r = ssh(fleet, h.name, "sh -c 'echo \"[$DOCKER_HOST]\"'")
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == (f"[{BAD_DOCKER}]" if h.name == "host02" else "[]")


def test_host_keys_are_verified(fleet: Fleet, tmp_path: Path) -> None:
    h1, h2 = fleet.host("host01"), fleet.host("host02")
    wrong = tmp_path / "wrong_known_hosts"  # host01's port with host02's key
    wrong.write_text(h1.known_hosts_line().replace(h1.known_hosts_line().split()[2], h2.known_hosts_line().split()[2]))
    r = ssh(fleet, "host01", "true", known_hosts=wrong)
    assert r.returncode == 255
    assert "REMOTE HOST IDENTIFICATION HAS CHANGED" in r.stderr
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    r = ssh(fleet, "host01", "true", known_hosts=empty)
    assert r.returncode == 255
    assert "Host key verification failed" in r.stderr
    assert empty.read_text() == ""  # nothing was learnt


def test_a_stopped_host_refuses_and_the_others_stay_up(fleet: Fleet) -> None:
    fleet.stop_host("host03")
    fleet.stop_host("host03")  # idempotent
    assert not fleet.host("host03").running
    r = ssh(fleet, "host03", "true")
    assert r.returncode == 255
    assert "Connection refused" in r.stderr
    assert [ssh(fleet, n, "true").returncode for n in ("host01", "host02")] == [0, 0]
    fleet.stop()
    fleet.stop()  # idempotent, never raises
    assert ssh(fleet, "host01", "true").returncode == 255


def test_start_fleet_refuses_unknown_hosts_in_extra(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match="host09"):
        start_fleet(tmp_path, 2, extra={"host09": ["SetEnv A=b"]})


def test_a_bad_config_line_fails_clearly_and_leaves_no_sshd(tmp_path: Path) -> None:
    with pytest.raises(FleetError, match=r"host02.*exited") as e:
        start_fleet(tmp_path, 2, extra={"host02": ["NoSuchKeyword yes"]})
    assert "NoSuchKeyword" in str(e.value)  # sshd's own complaint, from its log
    assert sshd_pids_under(tmp_path) == []  # host01 had started: it was stopped


def sshd_pids_under(path: Path) -> list[int]:
    """The live sshd whose command line names a config under ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and argv[0].endswith(b"sshd") and str(path).encode() in b" ".join(argv):
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize("fmt,name", [("ini", "hosts.ini"), ("yaml", "hosts.yml")])
def test_inventory_with_the_real_ansible(fleet: Fleet, tmp_path: Path, fmt: str, name: str) -> None:
    own = {
        "gpu_count": 8,
        "driver": "550.54",
        "tag": "8",
        "labels": ["a", "b c"],
        "opts": {"mig": False},
        "note": 'say "hi" \\ it\'s # here',
    }
    inv = fleet.write_inventory(
        tmp_path / name,
        fmt,  # type: ignore[arg-type]
        host_vars={"host01": own},
        groups={"gpu": ["host01", "host02"], "cpu": ["host03"]},
    )
    control = tempfile.mkdtemp(prefix="cai-cp-")  # short: ssh's ControlPath is a unix socket path
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": control,
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
    }
    try:
        r = subprocess.run(
            [str(VENV_BIN / "ansible-inventory"), "-i", str(inv), "--list"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert r.returncode == 0, r.stderr
        listed = json.loads(r.stdout)
        assert sorted(listed["gpu"]["hosts"]) == ["host01", "host02"]
        assert listed["cpu"]["hosts"] == ["host03"]
        hostvars = listed["_meta"]["hostvars"]
        assert sorted(hostvars) == ["host01", "host02", "host03"]
        for h in fleet.hosts:
            assert {k: hostvars[h.name][k] for k in fleet.connection_vars(h)} == fleet.connection_vars(h)
            assert "StrictHostKeyChecking=yes" in hostvars[h.name]["ansible_ssh_common_args"]
        assert {k: hostvars["host01"][k] for k in own} == own  # types survive (the string "8" too)

        fleet.stop_host("host03")
        r = subprocess.run(
            [str(VENV_BIN / "ansible"), "all", "-i", str(inv), "-m", "raw", "-a", "echo ok $DOCKER_HOST", "-f", "3"],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        out = r.stdout + r.stderr
        assert r.returncode == 4, out  # 4: some host unreachable
        assert "host03 | UNREACHABLE!" in out
        assert "host01 | CHANGED | rc=0 >>\nok \n" in out or "host01 | CHANGED | rc=0 >>\nok\n" in out, out
        assert f"host02 | CHANGED | rc=0 >>\nok {BAD_DOCKER}" in out, out
    finally:
        fleet.stop()
        shutil.rmtree(control, ignore_errors=True)
