"""The action registry: plans derived from recipes (golden argv), no secret in any argv, and apply on a real target."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cai_tui.actions import registry
from cai_tui.recipe import load_recipe
from cai_tui.recipe.model import CaiTargets, KataTargets
from cai_tui.recipe.secrets import SecretRef
from tests.helpers import REPO

LAB = REPO / "recipes" / "lab-demo.yaml"
BEIJING = REPO / "recipes" / "cai-qwen2.5-3b-beijing.yaml"
H = "/home/u"
PUBLIC_PW = f"{H}/cai-home/config/public-model-password"
MODEL_IDS = {"model.download", "model.encrypt", "model.upload", "model.use_public", "oss.apply_bucket_policy"}
STACK_IDS = {"kms.create_secret", "cai.start_stack", "cai.deploy", "cai.troubleshoot", "bundle.collect"}
SETUP_IDS = {
    "model.choose_encryption",
    "model.install_gocryptfs",
    "model.create_key_file",
    "trustee.find_url",
    "trustee.test_auth",
    "tng.launch",
    "inference.ask",
}


@pytest.fixture
def _home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", H)
    monkeypatch.setenv("CAI_TUI_HOME", f"{H}/cai-home")


def argvs(path: Path, action: str) -> list[list[str]]:
    spec = registry.get(action)
    assert spec is not None
    return [s.argv for s in spec.plan(load_recipe(path))]


KATA_IDS = {
    *(f"rootfs.{x}" for x in ("grow", "mount", "install_tools", "enter", "install_driver", "add_hook", "unmount")),
    "kata.set_hook_path",
    *(f"image.{x}" for x in ("install_buildx", "build", "import")),
    "gpu.bind_vfio",
    *(f"cni.{x}" for x in ("install_plugins", "install_cnitool", "write_conf", "create_netns", "attach")),
    *(f"container.{x}" for x in ("run", "serve", "ask")),
}
KATA = REPO / "recipes" / "kata-virtcca-qwen1.5-1.8b.yaml"


def _ids(flow: str) -> list[str]:
    return [i for i in registry.all_ids() if registry.get(i).flow == flow]  # type: ignore[union-attr]


def test_ids_cover_the_actions_of_the_stage_specs() -> None:
    assert set(_ids("cai")) == MODEL_IDS | STACK_IDS | SETUP_IDS
    assert set(_ids("kata-virtcca")) == KATA_IDS
    assert set(registry.all_ids()) == MODEL_IDS | STACK_IDS | SETUP_IDS | KATA_IDS
    assert registry.get("nope.nothing") is None
    for i in registry.all_ids():
        spec = registry.get(i)
        assert spec is not None and spec.id == i and spec.flow in ("cai", "kata-virtcca") and spec.title


@pytest.mark.usefixtures("_home")
def test_beijing_plans() -> None:
    r = str(BEIJING)
    model = f"{H}/.cache/modelscope/hub/models/Qwen/Qwen2.5-3B-Instruct"
    assert argvs(BEIJING, "model.download") == [
        ["cai-tui", "model", "download", "Qwen/Qwen2.5-3B-Instruct", "--dest", model]
    ]
    assert argvs(BEIJING, "model.encrypt") == [
        [
            "cai-tui",
            "model",
            "encrypt",
            model,
            f"{H}/mount/cipher",
            "--password-file",
            f"{H}/cachefs-password",
            "--engine",
            "native",
        ]
    ]
    assert argvs(BEIJING, "model.upload") == [
        ["cai-tui", "model", "upload", f"{H}/mount/cipher", "oss://examplebucket/qwen-encrypted/", "--recipe", r]
    ]
    assert argvs(BEIJING, "model.use_public") == [
        [
            "cai-tui",
            "model",
            "use-public",
            "--recipe",
            r,
            "--method",
            "gocryptfs",
            "--write",
            "--password-file",
            PUBLIC_PW,
        ]
    ]
    assert argvs(BEIJING, "oss.apply_bucket_policy") == [
        ["cai-tui", "model", "bucket-policy", "--recipe", r],
        ["cai-tui", "model", "bucket-policy", "--recipe", r, "--apply", "--yes"],
    ]


@pytest.mark.usefixtures("_home")
def test_lab_plans() -> None:
    r = str(LAB)
    lab = f"{H}/.local/state/cai-tui/lab"
    assert argvs(LAB, "model.download") == [["cai-tui", "model", "download", f"{lab}/demo-model"]]
    assert argvs(LAB, "model.encrypt") == [
        [
            "cai-tui",
            "model",
            "encrypt",
            f"{lab}/demo-model",
            f"{lab}/demo-cipher",
            "--password-file",
            f"{lab}/model-password",
            "--engine",
            "native",
        ]
    ]
    assert argvs(LAB, "model.upload") == [
        ["cai-tui", "model", "upload", f"{lab}/demo-cipher", "oss://lab-models/demo-gocryptfs/", "--recipe", r]
    ]
    assert argvs(LAB, "model.use_public") == [
        [
            "cai-tui",
            "model",
            "use-public",
            "--recipe",
            r,
            "--method",
            "gocryptfs",
            "--write",
            "--password-file",
            PUBLIC_PW,
        ]
    ]
    assert argvs(LAB, "oss.apply_bucket_policy") == [
        ["cai-tui", "model", "bucket-policy", "--recipe", r],
        ["cai-tui", "model", "bucket-policy", "--recipe", r, "--apply", "--yes"],
    ]


@pytest.mark.usefixtures("_home")
def test_every_plan_parses_with_the_cli() -> None:
    """Each argv is a valid invocation of the real command: click parses its arguments and options."""
    import typer.main

    from cai_tui.cli.main import app

    root = typer.main.get_command(app)
    for path, flow, roles in (
        (LAB, "cai", CaiTargets),
        (BEIJING, "cai", CaiTargets),
        (KATA, "kata-virtcca", KataTargets),
    ):
        loaded = load_recipe(path)
        for i in _ids(flow):
            spec = registry.get(i)
            assert spec is not None
            for step in spec.plan(loaded):
                assert step.where in roles.model_fields, (i, step.where)  # a role the recipe can name
                if step.manual:  # a command for a person (dnf, a download): not ours to parse
                    assert step.changes, i
                    continue
                assert step.argv[0] == "cai-tui" and step.changes
                for argv in (step.argv, step.undo) if step.undo else (step.argv,):
                    command = root.commands[argv[1]]  # type: ignore[attr-defined]
                    rest = list(argv[2:])
                    while hasattr(command, "commands"):  # a group: model …, kata vfio …
                        command, rest = command.commands[rest[0]], rest[1:]
                    command.make_context(argv[1], rest)


@pytest.mark.usefixtures("_home")
def test_no_secret_value_in_any_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing is resolved: env: references with values set never leak; non-file passwords give the placeholder."""
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", "LTAI-SECRET-ID")
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", "SECRET-VALUE-1")
    monkeypatch.setenv("MODEL_PW", "SECRET-VALUE-2")
    import cai_tui.recipe.secrets as secrets

    def boom(*a: object, **k: object) -> str:
        raise AssertionError("a plan resolved a secret")

    monkeypatch.setattr(secrets, "resolve_secret", boom)
    for path in (LAB, BEIJING):
        loaded = load_recipe(path)
        for i in _ids("cai"):
            spec = registry.get(i)
            assert spec is not None
            for step in spec.plan(loaded):
                text = shlex.join(step.argv)
                assert "SECRET" not in text and "alibaba@1688" not in text
    loaded = load_recipe(BEIJING)
    loaded.recipe.answers.model.password = SecretRef("env", "MODEL_PW")
    (step,) = registry.get("model.encrypt").plan(loaded)  # type: ignore[union-attr]
    assert step.argv[step.argv.index("--password-file") + 1] == registry.PASSWORD_PLACEHOLDER
    assert "SECRET" not in shlex.join(step.argv)
    assert any("not a file: reference" in n for n in step.notes)
    assert not step.runnable


@pytest.mark.usefixtures("_home")
def test_sam_and_public_source_plans() -> None:
    loaded = load_recipe(BEIJING)
    model = loaded.recipe.answers.model
    model.encryption_method = "sam"
    model.sam.key = SecretRef("file", "/keys/sam-key")
    model.sam.key_id = "LD_Demo_0001"
    model.sam.sdk_dir = "/opt/RAI_SAM_SDK"
    (step,) = registry.get("model.encrypt").plan(loaded)  # type: ignore[union-attr]
    assert step.argv[-8:] == [
        "--password-file",
        "/keys/sam-key",
        "--method",
        "sam",
        "--key-id",
        "LD_Demo_0001",
        "--sam-sdk",
        "/opt/RAI_SAM_SDK",
    ]
    model.source = "public-encrypted"
    for i in ("model.download", "model.encrypt", "model.upload"):
        assert registry.get(i).plan(loaded) == []  # type: ignore[union-attr]


async def test_apply_rejects_placeholders() -> None:
    from cai_tui.targets.local import LocalTarget

    step = registry.PlanStep("x", ["cai-tui", "model", "encrypt", "A", "B", "--password-file", "PASSWORD_FILE"])
    with pytest.raises(ValueError):
        await registry.apply(None, step, LocalTarget())


async def test_apply_encrypts_the_lab_model(lab, tmp_path: Path) -> None:
    from cai_tui.gocryptfs import verify_password
    from cai_tui.targets.local import LocalTarget

    creds = json.loads(Path(lab.credentials_path).read_text("utf-8"))
    loaded = load_recipe(lab.recipe_path)
    model = loaded.recipe.answers.model
    assert Path(model.local_dir) == Path(lab.demo.model_dir)
    model.password = SecretRef("file", creds["model_password_file"])
    model.cipher_dir = str(tmp_path / "cipher")
    (step,) = registry.get("model.encrypt").plan(loaded)  # type: ignore[union-attr]
    assert step.runnable
    lines: list[tuple[str, str]] = []
    result = await registry.apply(loaded, step, LocalTarget(), on_line=lambda s, line: lines.append((s, line)))
    assert result.ok, result.stderr + result.stdout
    assert any("encrypted" in line for _, line in lines)
    password = Path(creds["model_password_file"]).read_text("utf-8").splitlines()[0]
    assert verify_password(tmp_path / "cipher", password)
    assert not verify_password(tmp_path / "cipher", password + "x")
    assert (tmp_path / "cipher" / "gocryptfs.conf").is_file()


@pytest.mark.usefixtures("_home")
def test_setup_plans_for_the_lab() -> None:
    r = str(LAB)
    lab = f"{H}/.local/state/cai-tui/lab"
    (choose,) = registry.get("model.choose_encryption").plan(load_recipe(LAB))  # type: ignore[union-attr]
    assert choose.argv == ["cai-tui", "recipe", "validate", r] and choose.changes.startswith("nothing")
    assert "gocryptfs (native engine): needs model.password" in choose.title
    assert argvs(LAB, "model.install_gocryptfs") == []  # the native engine needs no binary
    (key,) = registry.get("model.create_key_file").plan(load_recipe(LAB))  # type: ignore[union-attr]
    assert key.argv == ["cai-tui", "tools", "key-file", "--recipe", r]
    assert f"{lab}/model-password (mode 0600)" in key.changes and not key.changes.startswith("nothing")
    (find,) = registry.get("trustee.find_url").plan(load_recipe(LAB))  # type: ignore[union-attr]
    assert find.argv == ["cai-tui", "trustee", "find-url", "--recipe", r, "--write"]
    assert find.where == "trustee_admin" and "http://<AlbConfig alb DNS name>/trustee" in find.title
    (auth,) = registry.get("trustee.test_auth").plan(load_recipe(LAB))  # type: ignore[union-attr]
    only = "trustee.auth_nonce,trustee.gateway_health,trustee.as_reachable"
    assert auth.argv == ["cai-tui", "doctor", "--recipe", r, "--only", only] and auth.changes.startswith("nothing")
    (tng,) = registry.get("tng.launch").plan(load_recipe(LAB))  # type: ignore[union-attr]
    assert tng.argv == ["cai-tui", "tng", "launch", "--recipe", r] and tng.where == "client"
    assert "127.0.0.1:41000" in tng.title and tng.runnable and tng.notes == ()
    (ask,) = registry.get("inference.ask").plan(load_recipe(LAB))  # type: ignore[union-attr]
    assert ask.argv == ["cai-tui", "ask", "--recipe", r] and ask.where == "client" and ask.notes == ()


@pytest.mark.usefixtures("_home")
def test_setup_plans_follow_the_method_and_the_references() -> None:
    loaded = load_recipe(BEIJING)
    model = loaded.recipe.answers.model
    model.gocryptfs_engine = "fuse"
    (step,) = registry.get("model.install_gocryptfs").plan(loaded)  # type: ignore[union-attr]
    assert step.argv == ["cai-tui", "tools", "install-gocryptfs"] and "packages" in step.changes
    model.password = SecretRef("env", "MODEL_PW")
    (key,) = registry.get("model.create_key_file").plan(loaded)  # type: ignore[union-attr]
    assert key.changes == "nothing: answers.model.password is env:MODEL_PW, there is no file to write"
    model.encryption_method = "sam"
    assert registry.get("model.install_gocryptfs").plan(loaded) == []  # type: ignore[union-attr]
    (choose,) = registry.get("model.choose_encryption").plan(loaded)  # type: ignore[union-attr]
    assert "model.sam.sdk_dir" in choose.title and "model.sam.key_id" in choose.title
    model.sam.key = SecretRef("file", "/keys/sam-key")
    (key,) = registry.get("model.create_key_file").plan(loaded)  # type: ignore[union-attr]
    assert "answers.model.sam.key" in key.title and "/keys/sam-key" in key.changes
    loaded.recipe.answers.instance.public_ip = None
    (ask,) = registry.get("inference.ask").plan(loaded)  # type: ignore[union-attr]
    assert any("instance.public_ip is not set" in n for n in ask.notes)
    model.source = "public-encrypted"
    assert registry.get("model.create_key_file").plan(loaded) == []  # type: ignore[union-attr]
