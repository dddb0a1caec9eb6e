"""KATA-1.8's editor (cai_tui.kata.config_edit) on the kata lab's configuration (kata 3.24.0's template rendered):
keys found by table, values typed, every other byte kept (comments, order, CRLF, trailing comments, no final
newline), the backup kept as the original, restore byte for byte, and the file in effect (KATA_CONF_FILE, search
order, the recipe's path)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import tomllib

from cai_tui.kata import config_edit as ce
from cai_tui.kata import config_find as cf
from cai_tui.kata import config_write as cw
from cai_tui.lab.kata.kata_config import render, write_kata_config

HOOK = "/usr/share/oci/hooks"
EMPTY = 'guest_hook_path = ""'
COMMENTED_323 = '#guest_hook_path = "/usr/share/oci/hooks"'


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAI_TUI_STATE_DIR", str(tmp_path / "state"))


def changed_lines(old: str, new: str) -> list[tuple[str, str]]:
    a, b = old.split("\n"), new.split("\n")
    assert len(a) == len(b)
    return [(x, y) for x, y in zip(a, b, strict=True) if x != y]


def test_the_lab_file_is_kata_3_24_rendered() -> None:
    text = render()
    doc = tomllib.loads(text)
    qemu = doc["hypervisor"]["qemu"]
    assert qemu["guest_hook_path"] == "" and qemu["path"] == "/opt/kata/bin/qemu-system-aarch64"
    assert qemu["kernel_params"] == "virtcca_cvm_guest=1 swiotlb=262144,force"
    assert "@" not in "".join(ln for ln in text.splitlines() if not ln.lstrip().startswith("#"))
    fixture = Path(__file__).parents[1] / "fixtures/parsers/kata-configuration-qemu-3.24.toml"
    rendered_323 = render({"KERNELPARAMS": ""}).split("\n")
    assert fixture.read_text().split("\n")[4 : 4 + len(rendered_323) - 1] == rendered_323[:-1]


def test_bare_key_in_one_table_is_set_in_place() -> None:
    text = render()
    result = ce.edit(text, [("guest_hook_path", HOOK)], "configuration.toml")
    assert changed_lines(text, result.new) == [(EMPTY, f'guest_hook_path = "{HOOK}"')]
    (change,) = result.changes
    assert change.path == "hypervisor.qemu.guest_hook_path" and change.line == text.split("\n").index(EMPTY) + 1
    assert tomllib.loads(result.new)["hypervisor"]["qemu"]["guest_hook_path"] == HOOK


def test_commented_323_line_is_uncommented_and_values_typed() -> None:
    text = render().replace(EMPTY, COMMENTED_323)
    result = ce.edit(
        text,
        [
            ("guest_hook_path", "/opt/hooks"),
            ("hypervisor.qemu.default_memory", "20480"),
            ("hypervisor.qemu.enable_iommu", "true"),
            ("hypervisor.qemu.cold_plug_vfio", "root-port"),
        ],
        "c.toml",
    )
    assert changed_lines(text, result.new) == [
        ("default_memory = 2048", "default_memory = 20480"),
        ("enable_iommu = false", "enable_iommu = true"),
        ('cold_plug_vfio = "no-port" ', 'cold_plug_vfio = "root-port" '),  # its trailing blank kept
        (COMMENTED_323, 'guest_hook_path = "/opt/hooks"'),
    ]
    qemu = tomllib.loads(result.new)["hypervisor"]["qemu"]
    assert (qemu["default_memory"], qemu["enable_iommu"]) == (20480, True)


def test_crlf_trailing_comment_and_missing_final_newline_kept() -> None:
    text = '# head\r\n[hypervisor.qemu]\r\npath = "/q"\r\n  #guest_hook_path = "/x"   # the hooks\r\nx = 1'
    result = ce.edit(text, [("guest_hook_path", HOOK), ("hypervisor.qemu.x", "2")], "c.toml")
    assert result.new == (
        f'# head\r\n[hypervisor.qemu]\r\npath = "/q"\r\n  guest_hook_path = "{HOOK}"   # the hooks\r\nx = 2'
    )


def test_key_absent_from_a_named_table_goes_under_its_header() -> None:
    text = '[hypervisor.qemu]\r\npath = "/q"\r\n\r\n[runtime]\r\nenable_debug = false\r\n'
    result = ce.edit(text, [("hypervisor.qemu.guest_hook_path", HOOK)], "c.toml")
    assert (
        result.new
        == f'[hypervisor.qemu]\r\nguest_hook_path = "{HOOK}"\r\npath = "/q"\r\n\r\n[runtime]\r\nenable_debug = false\r\n'
    )
    assert result.changes[0].before is None


def test_setting_what_is_there_changes_nothing() -> None:
    once = ce.edit(render(), [("guest_hook_path", HOOK)], "c.toml").new
    again = ce.edit(once, [("guest_hook_path", HOOK)], "c.toml")
    assert not again.changed and again.changes == ()


def test_ambiguous_and_absent_keys_name_the_candidates() -> None:
    text = render()
    with pytest.raises(ce.ConfigEditError) as e:
        ce.edit(text, [("enable_debug", "true")], "c.toml")
    assert e.value.exit_code == 2
    for where in ("hypervisor.qemu.enable_debug", "agent.kata.enable_debug", "runtime.enable_debug"):
        assert where in e.value.message
    with pytest.raises(ce.ConfigEditError) as e:
        ce.edit(text, [("default_memry", "1")], "c.toml")
    assert "default_memry is not in c.toml" in e.value.message and "similar: default_memory" in e.value.message
    with pytest.raises(ce.ConfigEditError) as e:
        ce.edit(text, [("hypervisor.kvm.default_memory", "1")], "c.toml")
    assert "no table [hypervisor.kvm]" in e.value.message and "hypervisor.qemu.default_memory" in e.value.message


def test_bad_values_and_files_refused() -> None:
    text = render()
    with pytest.raises(
        ce.ConfigEditError, match=re.escape("default_memory in c.toml is an integer: 'lots' is not one")
    ):
        ce.edit(text, [("hypervisor.qemu.default_memory", "lots")], "c.toml")
    with pytest.raises(ce.ConfigEditError, match="is a boolean"):
        ce.edit(text, [("hypervisor.qemu.enable_iommu", "yes")], "c.toml")
    twice = text.replace("default_memory = 2048", "default_memory = 2048\ndefault_memory = 4096")
    with pytest.raises(ce.ConfigEditError, match=r"default_memory is set twice in \[hypervisor.qemu\]: c.toml:\d+"):
        ce.edit(twice, [("guest_hook_path", HOOK)], "c.toml")
    with pytest.raises(ce.ConfigEditError, match=r"c\.toml is not valid TOML"):
        ce.edit("[hypervisor.qemu\nx = 1\n", [("x", "2")], "c.toml")
    with pytest.raises(ce.ConfigEditError, match="write KEY=VALUE"):
        ce.parse_setting("guest_hook_path")


def test_write_keeps_the_original_as_bak_and_restore_is_byte_exact(tmp_path: Path) -> None:
    path = write_kata_config(tmp_path / "kata")
    original = path.read_bytes()
    path.chmod(0o640)
    old, text = ce.read_config(str(path))
    bak = cw.write(str(path), old, ce.edit(text, [("guest_hook_path", HOOK)], str(path)).new)
    assert bak == f"{path}.bak" and Path(bak).read_bytes() == original
    assert path.stat().st_mode & 0o777 == 0o640
    first = path.read_bytes()
    # a second, different edit keeps the .bak as the ORIGINAL, not the first edit's result
    old, text = ce.read_config(str(path))
    cw.write(str(path), old, ce.edit(text, [("hypervisor.qemu.default_memory", "20480")], str(path)).new)
    assert Path(bak).read_bytes() == original and path.read_bytes() != first
    done = cw.restore(str(path))
    assert done.restored and path.read_bytes() == original and not Path(bak).exists()
    assert any(d.startswith("-default_memory = 20480") for d in done.diff)
    again = cw.restore(str(path))
    assert not again.restored and again.message.startswith("nothing to undo")


def test_a_foreign_bak_is_never_overwritten_nor_restored_without_force(tmp_path: Path) -> None:
    path = write_kata_config(tmp_path)
    Path(f"{path}.bak").write_text("the user's own backup\n")
    old, text = ce.read_config(str(path))
    new = ce.edit(text, [("guest_hook_path", HOOK)], str(path)).new
    with pytest.raises(ce.ConfigEditError, match=r"\.bak exists and is not cai-tui's backup") as e:
        cw.write(str(path), old, new)
    assert e.value.exit_code == 1 and path.read_bytes() == old
    done = cw.restore(str(path))
    assert not done.restored and "--force" in done.message and path.read_bytes() == old


def test_restore_refuses_over_later_edits(tmp_path: Path) -> None:
    path = write_kata_config(tmp_path)
    old, text = ce.read_config(str(path))
    cw.write(str(path), old, ce.edit(text, [("guest_hook_path", HOOK)], str(path)).new)
    path.write_bytes(path.read_bytes() + b"# edited by hand\n")
    with pytest.raises(ce.ConfigEditError, match="changed since cai-tui wrote it") as e:
        cw.restore(str(path))
    assert e.value.exit_code == 1
    assert cw.restore(str(path), force=True).restored and path.read_bytes() == old


def test_file_in_effect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = write_kata_config(tmp_path / "etc")
    # KATA_CONF_FILE wins; a missing one is an error (the runtime does not fall back)
    assert cf.effective({"KATA_CONF_FILE": str(conf)}) == (str(conf), f"KATA_CONF_FILE={conf}")
    path, why = cf.effective({"KATA_CONF_FILE": str(tmp_path / "nope.toml")})
    assert path is None and "does not exist (the runtime fails, it does not fall back)" in why
    # without it, the first existing file of the search order (read through a patched order here)
    other = write_kata_config(tmp_path / "usr")
    monkeypatch.setattr(
        "cai_tui.parsers.kata_toml.SEARCH_ORDER", (str(tmp_path / "absent.toml"), str(other), str(conf))
    )
    assert cf.effective({})[0] == str(other)
    # the recipe's path when it exists, with a note that kata loads another file
    found = cf.find_config(str(conf), {})
    assert found.path == str(conf) and any(f"kata loads {other}" in n for n in found.notes)
    found = cf.find_config(str(tmp_path / "missing.toml"), {})
    assert found.path == str(other) and "does not exist: editing" in found.notes[0]
    (conf.parent / "config.d").mkdir()
    (conf.parent / "config.d" / "10-hooks.toml").write_text("[hypervisor.qemu]\n")
    notes = cf.find_config(str(conf), {"KATA_CONF_FILE": str(conf)}).notes
    assert "config.d fragments" in notes[-1]
    assert not any("shim refuses it" in n for n in notes)  # conf is one of the (patched) default paths
    third = write_kata_config(tmp_path / "third")
    notes = cf.find_config(str(third), {"KATA_CONF_FILE": str(third)}).notes
    assert any("kata 4.0 and later's shim refuses it" in n for n in notes)
    monkeypatch.setattr("cai_tui.parsers.kata_toml.SEARCH_ORDER", (str(tmp_path / "absent.toml"),))
    with pytest.raises(cf.ConfigNotFound, match="no kata configuration file to edit"):
        cf.find_config(None, {})
