"""Field kinds read from the real recipe models, and the quick check that speaks while a person types."""

from __future__ import annotations

import pytest

from cai_tui.recipe.cai import CaiAnswers
from cai_tui.recipe.draft import Draft, leaf_paths
from cai_tui.recipe.examples import example_path
from cai_tui.recipe.field_kinds import (
    CIDR,
    INTEGER,
    IP,
    KINDS,
    LIST,
    NUMBER,
    PATH,
    PORT,
    SECRET,
    SELECT,
    SIZE,
    TEXT,
    URL,
    field_kind,
    join_secret,
    quick_check,
    split_secret,
)
from cai_tui.recipe.kata import KataAnswers
from cai_tui.recipe.model import CaiRecipe

KINDS_SEEN = {
    ("cai", "oss.region"): TEXT,
    ("cai", "oss.bucket_path"): TEXT,
    ("cai", "oss.access_key_id"): SECRET,
    ("cai", "model.password"): SECRET,
    ("cai", "model.local_dir"): PATH,
    ("cai", "service.env_file"): PATH,
    ("cai", "model.source"): SELECT,
    ("cai", "trustee.verify_tls"): SELECT,
    ("cai", "instance.type"): SELECT,
    ("cai", "service.port"): PORT,
    ("cai", "tng.proxy_port"): PORT,
    ("cai", "instance.system_disk_gib"): SIZE,
    ("cai", "instance.public_ip"): IP,
    ("cai", "tng.proxy_host"): IP,
    ("cai", "oss.endpoint"): URL,
    ("cai", "trustee.url"): URL,
    ("cai", "tng.max_tokens"): INTEGER,
    ("cai", "service.sharing_peers"): LIST,
    ("cai", "targets.instance"): TEXT,
    ("kata-virtcca", "cni.subnet"): CIDR,
    ("kata-virtcca", "rootfs.grow_gib"): SIZE,
    ("kata-virtcca", "gpu.iommu_group"): INTEGER,
    ("kata-virtcca", "serve.gpu_memory_utilization"): NUMBER,
    ("kata-virtcca", "serve.use_modelscope"): SELECT,
    ("kata-virtcca", "image.target"): SELECT,
    ("kata-virtcca", "rootfs.packages"): LIST,
}


@pytest.mark.parametrize(("flow", "path"), list(KINDS_SEEN))
def test_each_kind_is_read_from_the_model(flow: str, path: str) -> None:
    assert field_kind(flow, path).kind == KINDS_SEEN[(flow, path)]


def test_every_leaf_of_both_models_has_a_kind_and_its_default_passes_the_quick_check() -> None:
    for flow, answers in (("cai", CaiAnswers), ("kata-virtcca", KataAnswers)):
        for path in leaf_paths(answers):
            kind = field_kind(flow, path)
            assert kind.kind in KINDS, path
            if kind.default is not None:
                assert quick_check(kind, kind.default) is None, (path, kind.default)


def test_every_value_of_the_example_recipes_passes_the_quick_check() -> None:
    """The quick check never refuses what the model accepts (shown on every keystroke, it must not cry wolf)."""
    for flow in ("cai", "kata-virtcca"):
        draft = Draft.open(example_path(flow))
        answers = CaiAnswers if flow == "cai" else KataAnswers
        for path in leaf_paths(answers):
            text = draft.get(path).text
            if text is not None:
                assert quick_check(field_kind(flow, path), text) is None, (path, text)


def test_select_carries_its_choices_and_default() -> None:
    source = field_kind("cai", "model.source")
    assert source.choices == ("modelscope", "local", "public-encrypted") and source.default == "modelscope"
    assert quick_check(source, "local") is None
    assert quick_check(source, "ftp") == "one of: modelscope, local, public-encrypted"
    tls = field_kind(CaiRecipe, "answers.trustee.verify_tls")  # the recipe class and an answers. prefix work too
    assert tls.choices == ("true", "false") and quick_check(tls, "no") is None
    assert field_kind("cai", "instance.type").choices == ("ecs.gn8v-tee.4xlarge", "ecs.gn8v-tee.6xlarge")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("8080", None), ("1", None), ("65535", None), ("0", "1–65535"), ("70000", "1–65535"), ("http", "1–65535"),
     ("", "cannot be empty")],
)  # fmt: skip
def test_port(text: str, problem: str | None) -> None:
    got = quick_check(field_kind("cai", "service.port"), text)
    assert got is None if problem is None else problem in (got or "")


def test_size_and_integer_bounds_come_from_the_model() -> None:
    disk = field_kind("cai", "instance.system_disk_gib")
    assert (disk.minimum, disk.maximum, disk.unit) == (20, 32768, "GiB")
    assert quick_check(disk, "1024") is None
    assert quick_check(disk, "10") == "expected 20–32768 GiB"
    assert quick_check(disk, "1T") == "expected a whole number"
    group = field_kind("kata-virtcca", "gpu.iommu_group")
    assert group.optional and quick_check(group, "") is None and quick_check(group, "-1") == "expected 0–65535"


def test_ip_cidr_url_and_path_use_the_types_own_messages() -> None:
    assert quick_check(field_kind("cai", "instance.public_ip"), "203.0.113.7") is None
    assert quick_check(field_kind("cai", "instance.public_ip"), "") is None  # optional: empty clears it
    assert "IP address" in (quick_check(field_kind("cai", "instance.public_ip"), "203.0.113") or "")
    subnet = field_kind("kata-virtcca", "cni.subnet")
    assert quick_check(subnet, "10.89.0.0/16") is None
    assert "host bits zero" in (quick_check(subnet, "10.88.0.1/16") or "")
    assert "private range" in (quick_check(subnet, "8.8.8.0/24") or "")
    url = field_kind("cai", "oss.endpoint")
    assert quick_check(url, "https://oss-cn-hangzhou.aliyuncs.com") is None
    assert "with its scheme" in (quick_check(url, "oss-cn-hangzhou.aliyuncs.com") or "")
    path = field_kind("cai", "service.env_file")
    assert quick_check(path, "~/cai.env") is None
    assert quick_check(path, "cai.env") == "expected an absolute path (starting with / or ~)"


def test_text_patterns_and_lengths_of_the_model() -> None:
    assert "bucket path" in (quick_check(field_kind("cai", "oss.bucket_path"), "examplebucket") or "")
    assert quick_check(field_kind("cai", "oss.region"), "beijing") == "region IDs look like cn-beijing or cn-hangzhou"
    assert quick_check(field_kind("cai", "model.model_id"), "Q") == "at least 3 characters"
    bridge = field_kind("kata-virtcca", "cni.bridge")
    assert quick_check(bridge, "cni0") is None and "expected form" in (quick_check(bridge, "a" * 16) or "")
    assert "a target is local" in (quick_check(field_kind("cai", "targets.instance"), "root@host") or "")


def test_lists_check_each_item() -> None:
    peers = field_kind("cai", "service.sharing_peers")
    assert peers.item is not None and peers.item.kind == IP
    assert quick_check(peers, "") is None and quick_check(peers, "[]") is None
    assert quick_check(peers, "10.0.0.2, 10.0.0.3") is None
    assert (quick_check(peers, "10.0.0.2, nope") or "").startswith("item 2 (nope): expected an IP address")
    assert quick_check(peers, "10.0.0.2,,10.0.0.3") == "item 2 is empty; separate items with one comma"


def test_secret_references_only() -> None:
    key = field_kind("cai", "oss.access_key_id")
    assert key.optional
    for ok in ("env:OSS_ACCESS_KEY_ID", "file:~/oss-key", "keyring:cai/oss", "prompt", ""):
        assert quick_check(key, ok) is None, ok
    assert "variable name" in (quick_check(key, "env:1BAD") or "")
    assert "never the secret itself" in (quick_check(key, "LTAI5tSomething") or "")
    assert split_secret("env:NAME") == ("env", "NAME") and split_secret(None) == ("", "")
    assert split_secret("prompt") == ("prompt", "") and split_secret("oops") == ("", "oops")
    assert join_secret("env", " NAME ") == "env:NAME" and join_secret("prompt", "x") == "prompt"
    assert join_secret("", "NAME") == ""


def test_number() -> None:
    util = field_kind("kata-virtcca", "serve.gpu_memory_utilization")
    assert quick_check(util, "0.9") is None
    assert "at most 1" in (quick_check(util, "1.5") or "")
    assert quick_check(util, "lots") == "expected a number, e.g. 0.95"


@pytest.mark.parametrize("path", ["oss", "model.sam", "oss.bucket", "nothing.here", "waivers"])
def test_sections_and_unknown_paths_are_refused_with_a_message(path: str) -> None:
    with pytest.raises(ValueError) as e:
        field_kind("cai", path)
    assert str(e.value)
