"""Property tests: on any text every parser returns or raises ParseError — never another exception.

Besides arbitrary text, inputs are stitched from lines of the real captures and the fixtures (with random lines mixed
in), so the fuzzing reaches past the first line of each parser.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import tomlkit
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cai_tui.parsers import conf_compute, cpuinfo, docker_version, kata_toml, kernel_config, lspci, proc_nvidia, sysfs
from cai_tui.parsers import nvidia_smi as ns
from cai_tui.parsers.errors import ParseError
from tests.parsers._captures import CAPTURES, FIXTURES

CORPUS_LINES = sorted(
    {
        line
        for path in [*CAPTURES.iterdir(), *FIXTURES.iterdir()]
        if path.is_file()
        for line in path.read_text("utf-8").splitlines()
        if not line.startswith(("## ", "# $ ", "# rc="))
    }
)
NOISY = "\t :=,[]()\"'#-./|\n" + "0123456789abcdefABCDEF" + "é²٣\x00\u2028"

line = st.one_of(
    st.sampled_from(CORPUS_LINES),
    st.text(alphabet=NOISY, max_size=30),
    st.sampled_from(CORPUS_LINES).map(lambda s: s[: len(s) // 2]),
    st.sampled_from(CORPUS_LINES).map(lambda s: "  " + s.replace(":", " : ", 1)),
)
texts = st.one_of(
    st.text(max_size=200),
    st.lists(line, max_size=12).map("\n".join),
    st.lists(line, max_size=12).map(lambda lines: "\n".join(lines) + "\n"),
)

TEXT_PARSERS: list[Callable[[str], Any]] = [
    ns.parse_list,
    ns.parse_gpu_inventory,
    lambda t: ns.summarize_q(ns.parse_q(t)),
    ns.parse_plain,
    ns.parse_version_info,
    ns.detect_failure,
    conf_compute.parse_status,
    conf_compute.parse_ready,
    lambda t: conf_compute.parse_query(t).confidential,
    lspci.parse_lspci_nn_D,
    sysfs.parse_hex_id,
    sysfs.driver_from_link,
    sysfs.group_from_link,
    sysfs.parse_class,
    sysfs.parse_numa_node,
    sysfs.parse_driver_override,
    kernel_config.parse_config,
    lambda t: kernel_config.parse_config(t, strict=False),
    kernel_config.parse_modules_builtin,
    kernel_config.parse_proc_modules,
    proc_nvidia.parse_version,
    proc_nvidia.parse_gpu_information,
    cpuinfo.parse_cpuinfo,
    cpuinfo.parse_cmdline,
    docker_version.parse_docker_version,
    lambda t: docker_version.parse_docker_version(t).newer_than("19.03"),
    docker_version.parse_compose_version,
    docker_version.compose_supports_include,
    docker_version.version_tuple,
    lambda t: kata_toml.parse_kata_config(t).kernel_param_map,
    lambda t: kata_toml.parse_kata_config(t, use_tomlkit=True),
]


def _only_parse_error(parse: Callable[[str], Any], text: str) -> None:
    try:
        parse(text)
    except ParseError as e:
        assert str(e)  # always says something


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(texts)
def test_text_parsers_raise_only_parse_error(text):
    for parse in TEXT_PARSERS:
        _only_parse_error(parse, text)


@settings(max_examples=150, deadline=None)
@given(
    texts, st.lists(st.sampled_from(["index", "name", "pci.bus_id", "memory.total", "x"]), max_size=6), st.booleans()
)
def test_query_csv_raises_only_parse_error(text, fields, header):
    _only_parse_error(lambda t: ns.parse_query_csv(t, fields, header, strip_units=True), text)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.integers(-3, 9), texts, max_size=4))
def test_per_gpu_raises_only_parse_error(texts_by_gpu):
    try:
        result = conf_compute.parse_per_gpu(texts_by_gpu)
    except ParseError:
        return
    assert set(result) == set(texts_by_gpu)
    conf_compute.gpus_off(result)


@settings(max_examples=100, deadline=None)
@given(
    st.text(alphabet=NOISY, max_size=16) | st.sampled_from(["0000:00:06.0", "81:00.0"]),
    st.dictionaries(
        st.sampled_from(["vendor", "device", "class", "driver", "iommu_group", "driver_override", "numa_node"]),
        texts | st.sampled_from(["0x10de", "0x030200", "../drivers/vfio-pci", "../iommu_groups/7", "-1", "(null)"]),
    ),
)
def test_sysfs_device_raises_only_parse_error(bdf, values):
    _only_parse_error(lambda _: sysfs.device_from_values(bdf, values), "")


@settings(max_examples=100, deadline=None)
@given(
    st.none() | texts,
    st.none() | texts,
    st.none() | st.lists(st.text(max_size=40), max_size=4),
    st.none() | st.lists(st.sampled_from(kernel_config.RUNTIME_PATHS) | st.text(max_size=20), max_size=4),
    st.none() | texts,
)
def test_vfio_state_raises_only_parse_error(config, builtin, files, runtime, loaded):
    try:
        state = kernel_config.vfio_state(config, builtin, files, runtime, loaded_modules=loaded)
    except ParseError:
        return
    assert set(state) == set(kernel_config.VFIO_OPTIONS)
    assert all(s.state in ("y", "m", "n", "unknown") for s in state.values())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.sampled_from(["24.0.5", "1.43", "Engine"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["Client", "Server", "Version", "ApiVersion", "Platform", "Name", "Components", "Details"])
            | st.text(max_size=5),
            children,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(json_values, st.sampled_from(["", "\nCannot connect to the Docker daemon at x.", "\nboom"]))
def test_docker_json_of_any_shape_raises_only_parse_error(value, tail):
    _only_parse_error(docker_version.parse_docker_version, json.dumps(value) + tail)


toml_scalars = st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=12) | st.sampled_from(["root-port", ""])
toml_values = st.recursive(
    toml_scalars,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["qemu", "clh", "guest_hook_path", "pcie_root_port", "enable_annotations", "kernel_params"])
            | st.text(alphabet="abcxyz_", min_size=1, max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["hypervisor", "runtime", "agent", "factory", "x"]),
        toml_values,
        max_size=3,
    ),
    st.booleans(),
)
def test_kata_config_of_any_shape_raises_only_parse_error(document, use_tomlkit):
    text = tomlkit.dumps(document)
    _only_parse_error(lambda t: kata_toml.parse_kata_config(t, use_tomlkit=use_tomlkit).kernel_param_map, text)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789.v-+~abc", max_size=12), st.text(alphabet="0123456789.v", max_size=8))
def test_version_comparisons_raise_only_parse_error(a, b):
    _only_parse_error(lambda _: docker_version.version_newer_than(a, b), "")
    _only_parse_error(lambda _: docker_version.version_at_least(a, b), "")
