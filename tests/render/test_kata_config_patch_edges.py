"""kata-config-patch on the files that broke it (issue 12 §3): the script really runs (bash, the system awk,
coreutils) and its result is read back byte for byte and with tomllib.

- a file TOML refuses because a key is written twice: refused, each occurrence named file:line, nothing written;
- a trailing comment on the replaced line: kept; CRLF line endings: kept on every line, the new one included;
- kata 3.24's template (``guest_hook_path = ""``): the empty value replaced in place.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from cai_tui.parsers.kata_toml import parse_kata_config
from tests.checks.test_kata_config import COMMENTED, SET, kata_toml
from tests.render.test_kata_artifacts import FIXTURES, backups, changed_lines, patch_script, run_patch

if sys.version_info >= (3, 11):
    import tomllib

    toml_loads = tomllib.loads
else:  # pragma: no cover - Python 3.10: tomlkit, the project's other TOML reader

    def toml_loads(text: str) -> dict[str, Any]:
        import tomlkit

        return tomlkit.parse(text).unwrap()


UPSTREAM = FIXTURES / "kata-configuration-qemu-upstream.toml"
KATA_324 = FIXTURES / "kata-configuration-qemu-3.24.toml"


def folder_listing(config: Path) -> list[str]:
    return sorted(p.name for p in config.parent.iterdir())


def test_key_written_twice_is_refused_and_the_file_left_alone(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    text = kata_toml(f'guest_hook_path = "/opt/hooks"\n{COMMENTED}\nguest_hook_path = "/srv/hooks"')
    config.write_bytes(text.encode())
    before = config.read_bytes()
    proc = run_patch(patch_script(tmp_path, config))
    first = text.splitlines().index('guest_hook_path = "/opt/hooks"') + 1
    second = text.splitlines().index('guest_hook_path = "/srv/hooks"') + 1
    assert proc.returncode == 4, proc.stderr
    assert f"guest_hook_path is set twice in [hypervisor.qemu]: {config}:{first} and {config}:{second}\n" in proc.stderr
    assert "keep the line you mean, delete the other" in proc.stderr and f"{config} was not changed" in proc.stderr
    assert "set " not in proc.stdout  # never reported as patched
    assert config.read_bytes() == before and backups(config) == []
    assert folder_listing(config) == ["configuration.toml", "kata-config-patch.sh"]  # no temporary file left


def test_other_things_written_twice_are_refused_too(tmp_path: Path) -> None:
    """Any key twice in one table, or a table header twice, makes the file one kata refuses: not patched either."""
    config = tmp_path / "configuration.toml"
    text = kata_toml(COMMENTED).replace("vfio_mode = ", 'vfio_mode = "vfio"\nvfio_mode = ') + "[agent.kata]\n"
    config.write_text(text)
    proc = run_patch(patch_script(tmp_path, config))
    lines = text.splitlines()
    vfio = [n for n, ln in enumerate(lines, 1) if ln.startswith("vfio_mode")]
    agent = [n for n, ln in enumerate(lines, 1) if ln == "[agent.kata]"]
    assert proc.returncode == 4
    assert f"vfio_mode is set twice in [runtime]: {config}:{vfio[0]} and {config}:{vfio[1]}" in proc.stderr
    assert f"[agent.kata] is written twice: {config}:{agent[0]} and {config}:{agent[1]}" in proc.stderr
    assert config.read_text() == text and backups(config) == []


def test_trailing_comment_on_the_replaced_line_is_kept(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    old = 'guest_hook_path = "/opt/#hooks"    # site hooks, see ticket #12'
    text = kata_toml(old)
    config.write_text(text)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    assert changed_lines(text, config.read_text()) == [(old, SET + "    # site hooks, see ticket #12")]
    assert toml_loads(config.read_text())["hypervisor"]["qemu"]["guest_hook_path"] == "/usr/share/oci/hooks"

    shipped = "  #guest_hook_path = '/usr/share/oci/hooks' # uncomment to enable"  # literal string, indented
    text = kata_toml(shipped)
    config.write_text(text)
    assert run_patch(patch_script(tmp_path, config)).returncode == 0
    assert changed_lines(text, config.read_text()) == [(shipped, "  " + SET + " # uncomment to enable")]


def test_crlf_file_keeps_its_line_endings(tmp_path: Path) -> None:
    config = tmp_path / "configuration.toml"
    original = UPSTREAM.read_bytes().replace(b"\n", b"\r\n")
    config.write_bytes(original)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    after = config.read_bytes()
    assert after == original.replace(COMMENTED.encode() + b"\r\n", SET.encode() + b"\r\n")
    assert after.count(b"\n") == after.count(b"\r\n") == original.count(b"\r\n")
    assert toml_loads(after.decode())["hypervisor"]["qemu"]["guest_hook_path"] == "/usr/share/oci/hooks"
    [backup] = backups(config)
    assert backup.read_bytes() == original
    again = run_patch(patch_script(tmp_path, config))
    assert again.returncode == 0 and "nothing changed" in again.stdout and config.read_bytes() == after

    # the key added under the header takes the header's line ending; no line break appears after a last line
    # that had none
    bare = kata_toml("").replace("\n", "\r\n").rstrip("\r\n").encode()
    config.write_bytes(bare)
    assert run_patch(patch_script(tmp_path, config)).returncode == 0
    assert config.read_bytes() == bare.replace(
        b"[hypervisor.qemu]\r\n", b"[hypervisor.qemu]\r\n" + SET.encode() + b"\r\n"
    )
    assert parse_kata_config(config.read_bytes().decode()).guest_hook_path == "/usr/share/oci/hooks"


def test_kata_324_template_empty_value_replaced_in_place(tmp_path: Path) -> None:
    config = tmp_path / "configuration-qemu.toml"
    original = KATA_324.read_text()
    config.write_text(original)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    after = config.read_text()
    assert changed_lines(original, after) == [('guest_hook_path = ""', SET)]
    before_cfg, after_cfg = toml_loads(original), toml_loads(after)
    assert after_cfg["hypervisor"]["qemu"].pop("guest_hook_path") == "/usr/share/oci/hooks"
    before_cfg["hypervisor"]["qemu"].pop("guest_hook_path")
    assert after_cfg == before_cfg  # nothing else changed
    assert "warning: kernel_params lacks virtcca_cvm_guest=1" in proc.stderr
    assert "where kata ignores it" not in proc.stderr
    again = run_patch(patch_script(tmp_path, config))
    assert again.returncode == 0 and "nothing changed" in again.stdout and config.read_text() == after


def test_key_in_another_table_is_left_and_named(tmp_path: Path) -> None:
    """The hypervisor table gets the key; the stray line in [runtime] (ignored by kata) is named, not touched."""
    config = tmp_path / "configuration.toml"
    text = kata_toml(COMMENTED).replace("[runtime]\n", '[runtime]\nguest_hook_path = "/opt/hooks"\n')
    config.write_text(text)
    proc = run_patch(patch_script(tmp_path, config))
    assert proc.returncode == 0, proc.stderr
    assert changed_lines(text, config.read_text()) == [(COMMENTED, SET)]
    stray = text.splitlines().index('guest_hook_path = "/opt/hooks"') + 1
    assert f"warning: {config}:{stray} sets guest_hook_path in [runtime], where kata ignores it" in proc.stderr


def test_a_file_toml_refuses_otherwise_is_not_installed(tmp_path: Path) -> None:
    """The second opinion (python3's tomllib, where present): an edit of a broken file is not installed."""
    config = tmp_path / "configuration.toml"
    text = kata_toml(COMMENTED).replace('machine_type = "virt"', 'machine_type = "virt')
    config.write_text(text)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)  # this interpreter as the host's python3
    script = patch_script(tmp_path, config)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "LC_ALL": "C"}
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env, timeout=30)
    if sys.version_info < (3, 11):  # no tomllib: no second opinion, the awk edit stands
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 5, proc.stderr
    assert "would not be valid TOML (python3 tomllib:" in proc.stderr and f"{config} was not changed" in proc.stderr
    assert config.read_text() == text and backups(config) == []
