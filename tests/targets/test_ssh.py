"""SshTarget against a real OpenSSH sshd on 127.0.0.1 (host keys, auth, streaming, SFTP, ssh config aliases)."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from cai_tui.targets.base import HostKeyRefused, Target, TargetError
from cai_tui.targets.parse import target_from_uri
from cai_tui.targets.ssh import SshTarget
from tests.targets.proclib import pid_alive, wait_gone
from tests.targets.sshd_lab import Sshd, fingerprint_of, keygen, make_sshd


@pytest.fixture(autouse=True)
def no_agent_no_home_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Nothing from the person running the tests (agent, ~/.ssh) may take part."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    server = make_sshd(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def known_hosts(tmp_path: Path, sshd: Sshd) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(sshd.known_hosts_line())
    return path


def options(sshd: Sshd, known_hosts: Path, **extra: Any) -> dict[str, Any]:
    return {
        "known_hosts": known_hosts,
        "identity_file": sshd.client_key,
        "use_agent": False,
        "look_for_keys": False,
        "ssh_config": None,
        **extra,
    }


@pytest.fixture
async def target(sshd: Sshd, known_hosts: Path) -> AsyncIterator[SshTarget]:
    t = await SshTarget.connect(f"ssh://{sshd.user}@127.0.0.1:{sshd.port}", **options(sshd, known_hosts))
    yield t
    await t.close()


async def test_key_auth_and_run_streams_lines(target: SshTarget, sshd: Sshd) -> None:
    assert isinstance(target, Target)
    assert target.name == f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    seen: list[tuple[float, str, str]] = []
    t0 = time.monotonic()
    r = await target.run(
        ["sh", "-c", "echo one; sleep 0.8; echo two >&2; printf tail; exit 3"],
        on_line=lambda s, line: seen.append((time.monotonic() - t0, s, line)),
    )
    assert r.rc == 3
    assert r.stdout == "one\ntail"  # the pid marker the wrapper prints is not part of it
    assert r.stderr == "two\n"
    assert [(s, line) for _, s, line in seen] == [("stdout", "one"), ("stderr", "two"), ("stdout", "tail")]
    assert seen[0][0] < 0.6 and seen[1][0] >= 0.7, f"lines did not stream: {seen}"
    assert r.target == target.name


async def test_stdin_env_and_missing_command(target: SshTarget) -> None:
    data = bytes(range(256)) * 2000
    r = await target.run(["sh", "-c", "wc -c"], stdin=data)
    assert r.rc == 0 and r.stdout.strip() == str(len(data))
    r = await target.run(["sh", "-c", 'printf "%s" "$CAI_X"'], env={"CAI_X": "a 'quoted' $value"})
    assert r.stdout == "a 'quoted' $value"
    r = await target.run(["cai-tui-no-such-command-xyz"])
    assert r.rc == 127


async def test_timeout_kills_the_remote_process_group(target: SshTarget) -> None:
    t0 = time.monotonic()
    r = await target.run(["sh", "-c", "echo $$; sleep 30 & echo $!; sleep 30"], timeout=1)
    assert r.rc == 124 and time.monotonic() - t0 < 4
    assert "timed out after 1s" in r.stderr
    pids = [int(x) for x in r.stdout.split()]
    assert len(pids) == 2
    assert wait_gone(pids) == [], "the remote command (sshd runs here, so /proc shows it) is still running"


async def test_many_timeouts_at_once_are_all_killed(target: SshTarget) -> None:
    """More than the 7 sessions a target uses at once: 7 start and are killed (2 kill sessions at a time), the
    other 2 time out waiting and never start."""
    results = await asyncio.gather(*(target.run(["sh", "-c", "echo $$; exec sleep 30"], timeout=0.5) for _ in range(9)))
    assert [r.rc for r in results] == [124] * 9
    pids = [int(r.stdout) for r in results if r.stdout]
    assert len(pids) == 7
    assert sum("waiting for one of 7 SSH sessions" in r.stderr for r in results) == 2
    assert wait_gone(pids) == [], "some timed-out remote commands survived"


async def test_cancellation_kills_the_remote_command(target: SshTarget) -> None:
    pid: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def on_line(stream: str, line: str) -> None:
        if not pid.done():
            pid.set_result(int(line))

    task = asyncio.ensure_future(target.run(["sh", "-c", "echo $$; exec sleep 30"], on_line=on_line, timeout=60))
    remote = await asyncio.wait_for(pid, 5)
    assert pid_alive(remote)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wait_gone([remote]) == []


async def test_concurrent_commands_share_the_connection(target: SshTarget, tmp_path: Path) -> None:
    t0 = time.monotonic()
    results = await asyncio.gather(*(target.run(["sh", "-c", f"sleep 1; echo {i}"]) for i in range(4)))
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(4)]
    assert time.monotonic() - t0 < 2.5
    # more commands than sshd's MaxSessions (10), with SFTP busy too: they queue instead of failing
    (tmp_path / "f").write_bytes(b"x")
    runs = [asyncio.ensure_future(target.run(["sh", "-c", f"sleep 0.3; echo {i}"])) for i in range(14)]
    reads = [asyncio.ensure_future(target.read_file(str(tmp_path / "f"))) for _ in range(3)]
    await asyncio.gather(*runs, *reads)
    assert [r.result().stdout for r in runs] == [f"{i}\n" for i in range(14)]
    assert [r.result() for r in reads] == [b"x"] * 3


async def test_sftp_files(target: SshTarget, tmp_path: Path) -> None:
    path = tmp_path / "remote" / "cai.env"
    path.parent.mkdir()
    await target.write_file(str(path), b"KEY=1\n", mode=0o640)
    assert path.read_bytes() == b"KEY=1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    await target.write_file(str(path), bytes(range(256)), mode=0o600)
    assert await target.read_file(str(path)) == bytes(range(256))
    assert await target.read_file(str(path), max_bytes=3) == b"\x00\x01\x02"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["cai.env"], "the temporary file was left behind"
    os.symlink("cai.env", path.parent / "link")
    assert await target.listdir(str(path.parent)) == ["cai.env", "link"]
    assert await target.readlink(str(path.parent / "link")) == "cai.env"
    assert await target.readlink(str(path)) is None
    assert await target.exists(str(path.parent / "link"))
    assert not await target.exists(str(path.parent / "absent"))
    with pytest.raises(FileNotFoundError):
        await target.read_file(str(path.parent / "absent"))
    with pytest.raises(IsADirectoryError):
        await target.read_file(str(path.parent))
    with pytest.raises(FileNotFoundError):
        await target.write_file(str(tmp_path / "no-dir" / "x"), b"")
    assert await target.which("sh") is not None
    assert await target.which("cai-tui-no-such-command-xyz") is None


async def test_unknown_host_key_is_refused_and_nothing_written(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("# the user's own file\n")
    uri = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    with pytest.raises(HostKeyRefused) as e:
        await SshTarget.connect(uri, **options(sshd, kh))
    message = str(e.value)
    assert f"[127.0.0.1]:{sshd.port}" in message
    assert "ssh-ed25519" in message
    assert fingerprint_of(sshd.host_key.with_suffix(".pub")) in message
    assert f"ssh-keyscan -p {sshd.port}" in message and "--accept-host-key" in message
    assert kh.read_text() == "# the user's own file\n"
    missing = tmp_path / "absent" / "known_hosts"
    with pytest.raises(HostKeyRefused):
        await SshTarget.connect(uri, **options(sshd, missing))
    assert not missing.exists() and not missing.parent.exists()


async def test_accept_new_host_key_adds_it_then_plain_connect_works(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "ssh" / "known_hosts"
    uri = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}"
    notices: list[str] = []
    t = await SshTarget.connect(uri, **options(sshd, kh, accept_new_host_key=True, on_notice=notices.append))
    await t.close()
    assert kh.read_text() == sshd.known_hosts_line()
    assert stat.S_IMODE(kh.stat().st_mode) == 0o600
    fp = fingerprint_of(sshd.host_key.with_suffix(".pub"))
    assert len(notices) == 1 and fp in notices[0] and str(kh) in notices[0]
    assert t.notices == notices
    again = await SshTarget.connect(uri, **options(sshd, kh))
    assert (await again.run(["true"])).rc == 0
    await again.close()
    assert kh.read_text() == sshd.known_hosts_line(), "a known key was added again"


async def test_hashed_known_hosts_entries_match(sshd: Sshd, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text(sshd.known_hosts_line())
    subprocess.run(["ssh-keygen", "-H", "-f", str(kh)], check=True, capture_output=True)
    assert kh.read_text().startswith("|1|")
    t = await SshTarget.connect(f"ssh://{sshd.user}@127.0.0.1:{sshd.port}", **options(sshd, kh))
    assert (await t.run(["true"])).rc == 0
    await t.close()


async def test_changed_host_key_is_refused_even_when_accepting_new(tmp_path: Path) -> None:
    server = make_sshd(tmp_path / "changing")
    server.start()
    try:
        kh = tmp_path / "known_hosts"
        kh.write_text(server.known_hosts_line())
        old_fp = fingerprint_of(server.host_key.with_suffix(".pub"))
        uri = f"ssh://{server.user}@127.0.0.1:{server.port}"
        t = await SshTarget.connect(uri, **options(server, kh))
        await t.close()
        server.stop()
        server.start(host_key=keygen(tmp_path / "changing" / "host_ed25519_new"))
        new_fp = fingerprint_of(server.host_key.with_suffix(".pub"))
        for accept in (False, True):
            with pytest.raises(HostKeyRefused) as e:
                await SshTarget.connect(uri, **options(server, kh, accept_new_host_key=accept))
            message = str(e.value)
            assert "HAS CHANGED" in message and old_fp in message and new_fp in message
            assert "ssh-keygen -R" in message
        assert (
            kh.read_text()
            == f"[127.0.0.1]:{server.port} "
            + " ".join((tmp_path / "changing" / "host_ed25519.pub").read_text().split()[:2])
            + "\n"
        )
    finally:
        server.stop()


async def test_a_key_of_another_type_counts_as_changed(sshd: Sshd, tmp_path: Path) -> None:
    other = keygen(tmp_path / "other_ecdsa", "ecdsa")
    kh = tmp_path / "known_hosts"
    kh.write_text(sshd.known_hosts_line(other))
    with pytest.raises(HostKeyRefused, match="HAS CHANGED"):
        await SshTarget.connect(
            f"ssh://{sshd.user}@127.0.0.1:{sshd.port}", **options(sshd, kh, accept_new_host_key=True)
        )
    assert kh.read_text() == sshd.known_hosts_line(other)


async def test_ssh_config_alias(sshd: Sshd, known_hosts: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host other\n  HostName 192.0.2.1\n\n"
        f"Host cai-box\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {sshd.user}\n  IdentityFile {sshd.client_key}\n"
    )
    t = await SshTarget.connect(
        "ssh://cai-box", known_hosts=known_hosts, ssh_config=cfg, use_agent=False, look_for_keys=False
    )
    try:
        assert t.settings.hostname == "127.0.0.1" and t.settings.port == sshd.port
        assert t.settings.identity_files == (str(sshd.client_key),)
        assert t.name == f"ssh://{sshd.user}@cai-box:{sshd.port}"
        r = await t.run(["sh", "-c", "echo via-alias"])
        assert r.stdout == "via-alias\n"
    finally:
        await t.close()


async def test_wrong_key_is_an_authentication_error(sshd: Sshd, known_hosts: Path, tmp_path: Path) -> None:
    stranger = keygen(tmp_path / "stranger")
    with pytest.raises(TargetError, match="authentication failed") as e:
        await SshTarget.connect(
            f"ssh://{sshd.user}@127.0.0.1:{sshd.port}", **options(sshd, known_hosts, identity_file=stranger)
        )
    assert not isinstance(e.value, HostKeyRefused)
    assert str(stranger) in str(e.value)


async def test_connection_refused_is_a_target_error(sshd: Sshd, known_hosts: Path) -> None:
    from tests.targets.sshd_lab import free_port

    with pytest.raises(TargetError, match="cannot connect"):
        await SshTarget.connect(f"ssh://{sshd.user}@127.0.0.1:{free_port()}", **options(sshd, known_hosts))


async def test_uri_gives_a_lazy_target(sshd: Sshd, known_hosts: Path) -> None:
    t = target_from_uri(f"ssh://{sshd.user}@127.0.0.1:{sshd.port}", **options(sshd, known_hosts))
    assert isinstance(t, SshTarget)
    try:
        r = await t.run(["sh", "-c", "echo lazy"])
        assert r.stdout == "lazy\n"
    finally:
        await t.close()
    with pytest.raises(ValueError, match="ssh://"):
        target_from_uri("ssh://")
