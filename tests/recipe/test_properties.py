"""Property tests: the loader and validators never fail with anything but a RecipeError."""

import string

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cai_tui.recipe import LoadedRecipe, RecipeError, loads_recipe
from cai_tui.recipe.types import parse_bdf, parse_bucket_path, parse_kbs_uri
from cai_tui.recipe.yaml_io import decode

KEYS = ["schema_version", "flow", "name", "answers", "oss", "bucket_path", "service", "port", "model", "targets", "cni"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["cai", "kata-virtcca", "env:X", "file:/x", "prompt", "my-bucket:/m/", "10.88.0.0/16"]),
)
trees = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), children, max_size=5),
    ),
    max_leaves=25,
)


def _yaml(value) -> str:
    import io

    from ruamel.yaml import YAML

    buf = io.StringIO()
    YAML(typ="safe").dump(value, buf)
    return buf.getvalue()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees)
def test_any_yaml_tree_gives_recipe_or_recipe_error(tree):
    if isinstance(tree, dict):
        tree.setdefault("schema_version", 1)
    try:
        result = loads_recipe(_yaml(tree), "p.yaml")
    except RecipeError as e:
        assert e.problems and all(str(p).startswith("p.yaml") for p in e.problems)
    else:
        assert isinstance(result, LoadedRecipe)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_recipe_error(data):
    # 400 random bytes are never a recipe (schema_version, flow, name and answers are all required): loading must be
    # refused with a RecipeError whose every problem names the file, never succeed and never raise anything else.
    with pytest.raises(RecipeError) as e:
        loads_recipe(decode(data, "b.yaml"), "b.yaml")
    assert e.value.problems and all(str(p).startswith("b.yaml") for p in e.value.problems)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=string.printable + "：/é", max_size=60))
def test_parsers_raise_only_value_error(text):
    for parse in (parse_bdf, parse_bucket_path, parse_kbs_uri):
        try:
            parse(text)
        except ValueError:
            pass


def _inline_secret_recipe(secret: str) -> str:
    return (
        "schema_version: 1\nflow: cai\nname: t\nanswers:\n  oss:\n    bucket_path: b-b:/x/\n"
        f"    access_key_id: env:K\n    access_key_secret: '{secret}'\n"
    )


def _refusal(secret: str) -> str:
    with pytest.raises(RecipeError) as e:
        loads_recipe(_inline_secret_recipe(secret), "s.yaml")
    return str(e.value)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=string.ascii_letters + string.digits + "!@#$%^&*()_+=-", min_size=1, max_size=40))
def test_inline_secret_never_echoed(secret):
    # Without a ':' nothing but the bare word `prompt` is a reference, so every other value is an inline secret: it must
    # be refused (a loader that accepted inline secrets fails here), and the message must not depend on the value at
    # all — the same text for this secret as for a fixed one, so no part of it can be echoed.
    assume(secret != "prompt")
    msg = _refusal(secret)
    assert "inline secret" in msg and "value not shown" in msg
    assert msg == _refusal("Zz0-reference-value")


@settings(max_examples=200, deadline=None)
@given(st.integers(-100000, 100000))
def test_port_validator(n):
    text = f"schema_version: 1\nflow: cai\nname: t\nanswers:\n  oss:\n    bucket_path: b-b:/x/\n  service:\n    port: {n}\n"
    if 1 <= n <= 65535:
        assert loads_recipe(text).recipe.answers.service.port == n
    else:
        try:
            loads_recipe(text)
        except RecipeError as e:
            assert "1–65535" in str(e)
        else:
            raise AssertionError("accepted a bad port")
