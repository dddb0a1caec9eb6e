"""Kata configuration.toml parser (tomllib and tomlkit paths) and the effective-file search order."""

import pytest

from cai_tui.parsers import kata_toml as kt
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import fixture

LOADERS = [pytest.param(False, id="tomllib"), pytest.param(True, id="tomlkit")]


@pytest.mark.parametrize("use_tomlkit", LOADERS)
def test_upstream_shape_with_hook_and_vfio_commented_out(use_tomlkit):
    cfg = kt.parse_kata_config(fixture("kata-configuration-qemu-upstream.toml").body, use_tomlkit=use_tomlkit)
    assert cfg.hypervisor_name == "qemu"
    assert cfg.guest_hook_path is None and cfg.cold_plug_vfio is None and cfg.hot_plug_vfio is None
    assert cfg.pcie_root_port is None
    assert cfg.kernel_params == "" and cfg.kernel_param_map == {}
    assert cfg.default_memory == 2048
    assert cfg.enable_annotations == ("enable_iommu", "virtio_fs_extra_args", "kernel_params")
    assert cfg.vfio_mode == "guest-kernel"
    assert cfg.hypervisor["machine_type"] == "q35"
    assert cfg.raw["agent"]["kata"]["dial_timeout"] == 45


@pytest.mark.parametrize("use_tomlkit", LOADERS)
def test_virtcca_gpu_config(use_tomlkit):
    cfg = kt.parse_kata_config(fixture("kata-configuration-virtcca-gpu.toml").body, use_tomlkit=use_tomlkit)
    assert cfg.guest_hook_path == "/usr/share/oci/hooks"
    assert (cfg.cold_plug_vfio, cfg.pcie_root_port, cfg.default_memory) == ("root-port", 1, 20480)
    assert cfg.kernel_params == "virtcca_cvm_guest=1 swiotlb=262144,force"
    assert cfg.kernel_param_map == {"virtcca_cvm_guest": "1", "swiotlb": "262144,force"}
    assert cfg.vfio_mode == "vfio"
    assert cfg.raw["runtime"]["static_sandbox_resource_mgmt"] is True
    assert cfg.hypervisor["virtio_fs_extra_args"] == ["--thread-pool-size=1"]


def test_both_loaders_agree():
    text = fixture("kata-configuration-virtcca-gpu.toml").body
    assert kt.parse_kata_config(text, use_tomlkit=True).raw == kt.parse_kata_config(text).raw


@pytest.mark.parametrize("use_tomlkit", LOADERS)
def test_invalid_toml(use_tomlkit):
    with pytest.raises(ParseError, match="not valid TOML"):
        kt.parse_kata_config('[hypervisor.qemu]\npath = "/usr/bin/qemu\n', use_tomlkit=use_tomlkit)
    with pytest.raises(ParseError, match="not valid TOML"):
        kt.parse_kata_config("[hypervisor.qemu]\npath = 1\npath = 2\n", use_tomlkit=use_tomlkit)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[hypervisor.qemu]\npcie_root_port = "2"\n', "pcie_root_port must be an integer"),
        ("[hypervisor.qemu]\ndefault_memory = true\n", "default_memory must be an integer"),
        ("[hypervisor.qemu]\nguest_hook_path = 1\n", "guest_hook_path must be a string"),
        ('[hypervisor.qemu]\nenable_annotations = "kernel_params"\n', "enable_annotations must be a list"),
        ("[hypervisor.qemu]\n[hypervisor.clh]\n", "more than one hypervisor table: clh, qemu"),
        ('hypervisor = "qemu"\n', "'hypervisor' must be a table"),
        ('runtime = "x"\n', "'runtime' must be a table"),
    ],
)
def test_wrong_types(text, message):
    with pytest.raises(ParseError, match=message):
        kt.parse_kata_config(text)


def test_no_hypervisor_table():
    cfg = kt.parse_kata_config('[runtime]\nvfio_mode = "vfio"\n')
    assert cfg.hypervisor_name is None and cfg.hypervisor == {} and cfg.vfio_mode == "vfio"


def test_effective_config_path_search_order():
    etc, usr, opt = kt.SEARCH_ORDER
    assert etc == "/etc/kata-containers/configuration.toml"
    assert kt.effective_config_path({}, {etc, usr, opt}) == etc
    assert kt.effective_config_path({}, {usr, opt}) == usr
    assert kt.effective_config_path({}, {opt}) == opt
    assert kt.effective_config_path({}, set()) is None


def test_effective_config_path_env_override():
    custom = "/srv/kata/custom.toml"
    etc = kt.SEARCH_ORDER[0]
    assert kt.effective_config_path({"KATA_CONF_FILE": custom}, {custom, etc}) == custom
    # set but missing: the runtime fails rather than falling back
    assert kt.effective_config_path({"KATA_CONF_FILE": custom}, {etc}) is None
    assert kt.effective_config_path({"KATA_CONF_FILE": "  "}, {etc}) == etc


@pytest.mark.parametrize("use_tomlkit", LOADERS)
def test_kata_324_template_ships_the_hook_path_empty(use_tomlkit):
    """From kata 3.24 the templates set ``guest_hook_path = ""`` (hooks off) and the vfio keys to no-port."""
    text = fixture("kata-configuration-qemu-3.24.toml").body
    cfg = kt.parse_kata_config(text, use_tomlkit=use_tomlkit)
    assert cfg.hypervisor_name == "qemu" and cfg.guest_hook_path == ""
    assert (cfg.hot_plug_vfio, cfg.cold_plug_vfio, cfg.pcie_root_port) == ("no-port", "no-port", 0)
    assert [(k.line, k.table, k.text, k.commented) for k in kt.key_lines(text, "guest_hook_path")] == [
        (413, "hypervisor.qemu", 'guest_hook_path = ""', False)
    ]
    assert kt.duplicates(text) == []


@pytest.mark.parametrize("use_tomlkit", LOADERS)
def test_key_written_twice_is_named_at_each_line(use_tomlkit):
    text = '[hypervisor.qemu]\r\npath = "/q"\r\nguest_hook_path = "/a"\r\n#guest_hook_path = "/b"\r\nguest_hook_path = "/c"\r\n'
    with pytest.raises(ParseError) as e:
        kt.parse_kata_config(text, use_tomlkit=use_tomlkit, source="/etc/kata-containers/configuration.toml")
    assert str(e.value) == (
        "/etc/kata-containers/configuration.toml is not valid TOML: guest_hook_path is set twice in "
        "[hypervisor.qemu]: /etc/kata-containers/configuration.toml:3 and /etc/kata-containers/configuration.toml:5. "
        "TOML allows a key once per table, and kata refuses the file: keep the line you mean and delete the other"
    )


def test_duplicates_tables_arrays_dotted_keys_and_strings():
    text = "\n".join(
        [
            "top = 1",  # 1
            '[hypervisor . "qemu"]',  # 2
            "a.b = 1",  # 3
            'k = """',  # 4
            "a.b = 2",  # 5: inside a multi-line string, not a key
            '"""',  # 6
            '"a" . b = 3',  # 7: the same dotted key as line 3
            "[[pool]]",  # 8
            "n = 1",  # 9
            "[[pool]]",  # 10
            "n = 2",  # 11: another table of the array: allowed
            "[runtime]",  # 12
            "[hypervisor.qemu]",  # 13
            "top = 2",  # 14: in [hypervisor.qemu], not the top level
        ]
    )
    assert kt.duplicates(text, "f.toml") == [
        "a.b is set twice in [hypervisor.qemu]: f.toml:3 and f.toml:7. TOML allows a key once per table, and kata "
        "refuses the file: keep the line you mean and delete the other",
        "[hypervisor.qemu] is written twice: f.toml:2 and f.toml:13. TOML allows a table once: move the keys under "
        "the later header to the first and delete the later header",
    ]
    assert [(k.line, k.table) for k in kt.key_lines(text, "top")] == [(1, ""), (14, "hypervisor.qemu")]
    assert kt.table_label("") == "the top level (before any [table] header)"


def test_note_says_what_each_kata_release_ships():
    """The module's note, read by whoever edits this parser: commented out up to 3.23, empty from 3.24."""
    doc = kt.__doc__ or ""
    assert '#guest_hook_path = "/usr/share/oci/hooks"' in doc and "3.23" in doc
    assert 'guest_hook_path = ""' in doc and "3.24" in doc and "disables guest hooks" in doc
