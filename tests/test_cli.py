import json

from cai_tui import __version__
from cai_tui.stages import load_all
from tests.helpers import run_cli


def test_version():
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"cai-tui {__version__}"


def test_help_lists_commands():
    r = run_cli("--help")
    assert r.returncode == 0
    for cmd in ("recipe", "stages", "lab"):
        assert cmd in r.stdout


def test_stages_json_document():
    r = run_cli("stages", "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["schema"] == "cai-tui/stages/v1"
    flows = {f["flow"]: f for f in doc["flows"]}
    assert set(flows) == {"cai", "kata-virtcca"}
    loaded = load_all()
    for name, f in flows.items():
        assert [s["id"] for s in f["stages"]] == [s.id for s in loaded[name].stages]
        for s in f["stages"]:
            assert set(s) >= {"id", "title", "covers", "fields", "actions", "checks"}
            assert s["covers"] and isinstance(s["fields"], list)
    assert "CAI-1.5" in {c for s in flows["cai"]["stages"] for c in s["covers"]}
    assert "KATA-3.1" in {c for s in flows["kata-virtcca"]["stages"] for c in s["covers"]}


def test_stages_human_chinese():
    r = run_cli("stages", "--lang", "zh")
    assert r.returncode == 0 and "获取模型" in r.stdout


def test_recipe_schema_is_a_json_schema_that_describes_secrets():
    r = run_cli("recipe", "schema")
    assert r.returncode == 0
    schema = json.loads(r.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    text = json.dumps(schema)
    assert "env:NAME" in text and "kbs://" in text
    assert {"cai", "kata-virtcca"} <= {
        m.get("const") for d in schema["$defs"].values() for m in [d.get("properties", {}).get("flow", {})]
    }


def test_recipe_without_args_is_usage_error():
    r = run_cli("recipe", "validate")
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_unknown_command_is_usage_error():
    r = run_cli("frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr
