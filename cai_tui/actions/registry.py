"""Which actions exist, and how each one is planned from a recipe and applied on a target.

An action's plan is a list of :class:`PlanStep`: the exact ``cai-tui …`` command line(s) that perform it,
derived from the loaded recipe. Secrets never enter an argv: a password appears only as ``--password-file PATH``,
taken from a ``file:`` reference in the recipe (nothing is resolved). Where the recipe lacks a value the argv holds
an upper-case placeholder, the step's ``note`` says what to set, and :func:`apply` refuses to run it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLI = "cai-tui"
PASSWORD_PLACEHOLDER = "PASSWORD_FILE"
RECIPE_PLACEHOLDER = "RECIPE.yaml"
MODEL_DIR_PLACEHOLDER = "MODEL_DIR"
CIPHER_DIR_PLACEHOLDER = "CIPHER_DIR"
PLACEHOLDERS = frozenset({PASSWORD_PLACEHOLDER, RECIPE_PLACEHOLDER, MODEL_DIR_PLACEHOLDER, CIPHER_DIR_PLACEHOLDER})
APPLY_TIMEOUT_S = 24 * 3600.0  # downloads, encryption and uploads of large models take hours


@dataclass(frozen=True)
class PlanStep:
    title: str
    argv: list[str]
    where: str = "workstation"  # the recipe's target role the command runs on
    changes: str = ""  # what running it changes
    notes: tuple[str, ...] = ()  # what the recipe lacks for this command (placeholders), or other caveats
    undo: tuple[str, ...] = ()  # the command line that reverses it (runs on ``where``); empty: nothing to undo
    manual: str = ""  # why the step cannot run from here: the plan shows ``argv`` as a command for a person to run

    @property
    def runnable(self) -> bool:
        """False while the argv holds a placeholder the user must replace first."""
        return not any(arg in PLACEHOLDERS for arg in self.argv)


@dataclass(frozen=True)
class ActionSpec:
    id: str
    title: str
    flow: str
    plan: Callable[[Any], list[PlanStep]]  # a LoadedRecipe (``.recipe``, ``.path``) → its steps


# ------------------------------------------------------------------------------------------------ recipe values
def _path(value: Any) -> str:
    return os.path.expanduser(os.fspath(value))


def _answers(loaded: Any) -> Any:
    recipe = loaded.recipe
    if recipe.flow != "cai":
        raise ValueError(f"the model actions belong to the cai flow; this recipe's flow is {recipe.flow!r}")
    return recipe.answers


def _recipe_path(loaded: Any, notes: list[str]) -> str:
    if loaded.path is None:
        notes.append(
            f"the recipe was not loaded from a file: save it and give its path instead of {RECIPE_PLACEHOLDER}"
        )
        return RECIPE_PLACEHOLDER
    return _path(loaded.path)


def _dir(value: Any, name: str, placeholder: str, notes: list[str]) -> str:
    if value is None:
        notes.append(f"{name} is not set: set it in the recipe (the command shows {placeholder})")
        return placeholder
    return _path(value)


def _password_file(ref: Any, name: str, notes: list[str]) -> str:
    """The path of a ``file:`` reference; anything else (env:, keyring:, prompt, unset) gives the placeholder."""
    if ref is not None and getattr(ref, "scheme", None) == "file":
        return _path(ref.target)
    what = "not set" if ref is None else f"{ref.scheme}: not a file: reference"
    notes.append(
        f"{name} is {what}; the command reads the key from a file only: write it to a file (mode 0600), "
        f"set {name} to file:PATH, and use that path for {PASSWORD_PLACEHOLDER}"
    )
    return PASSWORD_PLACEHOLDER


def _oss_url(bucket_path: str) -> str:
    from ..recipe.types import parse_bucket_path

    bucket, prefix = parse_bucket_path(str(bucket_path))
    return f"oss://{bucket}/{prefix}"


# ------------------------------------------------------------------------------------------------ plans
def plan_download(loaded: Any) -> list[PlanStep]:
    model = _answers(loaded).model
    notes: list[str] = []
    if model.source == "public-encrypted":
        return []
    if model.source == "local":
        src = _dir(model.local_dir, "answers.model.local_dir", MODEL_DIR_PLACEHOLDER, notes)
        return [
            PlanStep(
                "validate the local model directory (CAI-1.1)",
                [CLI, "model", "download", src],
                changes="nothing: the directory is only checked (config.json, tokenizer, weights)",
                notes=tuple(notes),
            )
        ]
    argv = [CLI, "model", "download", str(model.model_id)]
    dest = "ModelScope's cache"
    if model.local_dir is not None:
        dest = _path(model.local_dir)
        argv += ["--dest", dest]
    return [
        PlanStep(
            f"download {model.model_id} through ModelScope (CAI-1.1)",
            argv,
            changes=f"writes the model into {dest} (resumes an earlier partial download)",
            notes=tuple(notes),
        )
    ]


def plan_encrypt(loaded: Any) -> list[PlanStep]:
    model = _answers(loaded).model
    if model.source == "public-encrypted":
        return []
    notes: list[str] = []
    src = _dir(model.local_dir, "answers.model.local_dir", MODEL_DIR_PLACEHOLDER, notes)
    dst = _dir(model.cipher_dir, "answers.model.cipher_dir", CIPHER_DIR_PLACEHOLDER, notes)
    if model.encryption_method == "sam":
        key_file = _password_file(model.sam.key, "answers.model.sam.key", notes)
        argv = [CLI, "model", "encrypt", src, dst, "--password-file", key_file, "--method", "sam"]
        if model.sam.key_id is None:
            notes.append("answers.model.sam.key_id is not set (8–48 bytes, e.g. LD_Demo_0001)")
        else:
            argv += ["--key-id", str(model.sam.key_id)]
        if model.sam.sdk_dir is None:
            notes.append("answers.model.sam.sdk_dir is not set (the unpacked RAI_SAM_SDK folder)")
        else:
            argv += ["--sam-sdk", _path(model.sam.sdk_dir)]
        title = "encrypt the model with the Sam packager (CAI-1.6)"
    else:
        password_file = _password_file(model.password, "answers.model.password", notes)
        argv = [CLI, "model", "encrypt", src, dst, "--password-file", password_file]
        argv += ["--engine", str(model.gocryptfs_engine)]
        title = f"encrypt the model with gocryptfs, {model.gocryptfs_engine} engine (CAI-1.5)"
    return [
        PlanStep(
            title,
            argv,
            changes=f"writes the ciphertext into {dst} (absent or empty), with .cai-manifest.json inside",
            notes=tuple(notes),
        )
    ]


def plan_upload(loaded: Any) -> list[PlanStep]:
    answers = _answers(loaded)
    if answers.model.source == "public-encrypted":
        return []
    notes: list[str] = []
    src = _dir(answers.model.cipher_dir, "answers.model.cipher_dir", CIPHER_DIR_PLACEHOLDER, notes)
    dest = _oss_url(answers.oss.bucket_path)
    recipe = _recipe_path(loaded, notes)
    return [
        PlanStep(
            "upload the ciphertext to OSS, resumable and verified (CAI-1.7)",
            [CLI, "model", "upload", src, dest, "--recipe", recipe],
            changes=f"puts the files of {src} under {dest} (objects already there and equal are kept)",
            notes=tuple(notes),
        )
    ]


def plan_use_public(loaded: Any) -> list[PlanStep]:
    from .public_model import PUBLIC_PATHS, default_password_path

    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    method = str(answers.model.encryption_method)
    password_file = _path(default_password_path())
    return [
        PlanStep(
            f"point the recipe at the public pre-encrypted Qwen2.5-3B-Instruct ({PUBLIC_PATHS[method]}) (CAI-1.0)",
            [
                CLI,
                "model",
                "use-public",
                "--recipe",
                recipe,
                "--method",
                method,
                "--write",
                *("--password-file", password_file),
            ],
            changes=(
                f"saves {recipe} (comments kept, the previous version as .bak) and writes the published password "
                f"to {password_file} (mode 0600)"
            ),
            notes=tuple(notes),
        )
    ]


def plan_bucket_policy(loaded: Any) -> list[PlanStep]:
    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    if answers.oss.account_uid is None:
        notes.append("answers.oss.account_uid is not set (the bucket owner's account UID; or add --uid)")
    if answers.instance.public_ip is None:
        notes.append("answers.instance.public_ip is not set (the instance's public IP; or add --ip)")
    bucket = str(answers.oss.bucket_path).partition(":")[0]
    base = [CLI, "model", "bucket-policy", "--recipe", recipe]
    return [
        PlanStep(
            "show the generated bucket policy as a diff against the current one (CAI-4.1)",
            base,
            changes="nothing: the current policy is only read",
            notes=tuple(notes),
        ),
        PlanStep(
            "apply the bucket policy (CAI-4.1)",
            [*base, "--apply", "--yes"],
            changes=f"replaces the policy of bucket {bucket} (--merge would keep its current statements)",
            notes=tuple(notes),
        ),
    ]


def plan_start_stack(loaded: Any) -> list[PlanStep]:
    """CAI-5.2 (and, with deploy_with compose, CAI-5.4): files by SFTP, compose up --wait, watch until healthy."""
    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    s = answers.service
    wrote = f"writes {s.env_file} (0600, secrets resolved only there)"
    if s.deploy_with == "compose":
        wrote += f" and {s.compose_file}, then runs docker compose up -d --wait (the CAI stack and vLLM)"
    else:
        wrote += f", runs the CAI stack ({s.cai_compose_file}) with up -d --wait and writes vllm-run.sh for CAI-5.3"
    base = [CLI, "deploy", "--recipe", recipe]
    return [
        PlanStep(
            "show the files and commands the deployment runs",
            [*base, "--dry-run"],
            where="workstation",
            changes="nothing",
        ),
        PlanStep(
            "deploy to the instance and wait until the containers are healthy",
            [*base, "--yes"],
            where="workstation",
            changes=f"on the instance: {wrote} (an existing file is kept as FILE.bak)",
            notes=tuple(notes),
        ),
    ]


def plan_troubleshoot(loaded: Any) -> list[PlanStep]:
    _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    return [
        PlanStep(
            "match the failing containers against the FAQ and confirm with the related checks (CAI-F1..F4)",
            [CLI, "troubleshoot", "--recipe", recipe],
            where="workstation",
            changes="nothing: container states and logs are read, the deployed cai.env is compared with the recipe",
            notes=tuple(notes),
        )
    ]


def plan_bundle(loaded: Any) -> list[PlanStep]:
    _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    return [
        PlanStep(
            "collect a support bundle, secrets removed (CAI-F5)",
            [CLI, "bundle", "--recipe", recipe, "-o", "cai-diagnostic.tar.gz"],
            where="workstation",
            changes="writes cai-diagnostic.tar.gz here (versions, doctor results, container states and logs, scrubbed)",
            notes=tuple(notes),
        )
    ]


def plan_kms_secret(loaded: Any) -> list[PlanStep]:
    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    if answers.kms.access_key_id is None or answers.kms.access_key_secret is None:
        notes.append("answers.kms.access_key_id/_secret are not set: create the secret in the KMS console instead")
    base = [CLI, "kms", "create-secret", "--recipe", recipe]
    return [
        PlanStep("show the secret that will be created", [*base, "--dry-run"], changes="nothing", notes=tuple(notes)),
        PlanStep(
            "create the model key's secret in KMS and read it back (CAI-2.6)",
            [*base, "--yes"],
            changes=f"creates the KMS secret {answers.kms.secret_name} (an existing one is left alone without --update)",
            notes=tuple(notes),
        ),
    ]


def plan_choose_encryption(loaded: Any) -> list[PlanStep]:
    """CAI-1.2: the method is an answer; the step validates the recipe and says what the method still lacks."""
    model = _answers(loaded).model
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    if model.encryption_method == "sam":
        what = "Sam: needs model.sam.sdk_dir (RAI_SAM_SDK), model.sam.key (a reference) and model.sam.key_id"
    else:
        what = f"gocryptfs ({model.gocryptfs_engine} engine): needs model.password (a reference to the key)"
    return [
        PlanStep(
            f"check the recipe for the chosen encryption method, {what} (CAI-1.2)",
            [CLI, "recipe", "validate", recipe],
            changes="nothing: the recipe is only read (what the method lacks is reported)",
            notes=tuple(notes),
        )
    ]


def plan_install_gocryptfs(loaded: Any) -> list[PlanStep]:
    """CAI-1.3: only the fuse engine of gocryptfs runs the binary."""
    model = _answers(loaded).model
    if model.source == "public-encrypted" or model.encryption_method == "sam" or model.gocryptfs_engine == "native":
        return []
    return [
        PlanStep(
            "install gocryptfs for the fuse engine through the system's package manager (CAI-1.3)",
            [CLI, "tools", "install-gocryptfs"],
            changes="installs the gocryptfs and fuse packages (apt-get, dnf or yum; sudo when not root), "
            "unless gocryptfs is already on PATH",
        )
    ]


def plan_create_key_file(loaded: Any) -> list[PlanStep]:
    """CAI-1.4: a random key in the referenced file, when it is a file: reference and the file is absent."""
    from .key_file import key_ref

    answers = _answers(loaded)
    if answers.model.source == "public-encrypted":
        return []  # the published password: model.use_public writes it
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    key = key_ref(answers)
    if key.ref is None:
        notes.append(f"{key.field} is not set: set it to file:~/cachefs-password (or env:NAME, prompt)")
        changes = "nothing until the reference is set"
    elif key.path is None:
        changes = f"nothing: {key.field} is {key.ref}, there is no file to write"
    else:
        changes = f"writes a random key to {key.path} (mode 0600) when it does not exist; an existing file is kept"
    return [
        PlanStep(
            f"create the {key.method} key file named by {key.field} (CAI-1.4)",
            [CLI, "tools", "key-file", "--recipe", recipe],
            changes=changes,
            notes=tuple(notes),
        )
    ]


def plan_find_trustee_url(loaded: Any) -> list[PlanStep]:
    """CAI-2.4: http://<the AlbConfig's DNS name>/<release>, run where kubectl reaches the cluster."""
    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    base = [CLI, "trustee", "find-url", "--recipe", recipe]
    release = answers.trustee.helm.release
    return [
        PlanStep(
            f"read Trustee's URL from the ALB: http://<AlbConfig alb DNS name>/{release} (CAI-2.4)",
            [*base, "--write"],
            where="trustee_admin",
            changes=f"saves trustee.url in {recipe} (comments kept, the previous version as .bak)",
            notes=tuple(notes),
        )
    ]


def plan_test_trustee_auth(loaded: Any) -> list[PlanStep]:
    """CAI-2.5: the KBS handshake, the gateway's health and the AS, as checks."""
    _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    return [
        PlanStep(
            "test Trustee: KBS auth nonce, gateway health, Attestation Service (CAI-2.5)",
            [
                CLI,
                "doctor",
                "--recipe",
                recipe,
                "--only",
                "trustee.auth_nonce,trustee.gateway_health,trustee.as_reachable",
            ],
            changes="nothing: requests to Trustee only",
            notes=tuple(notes),
        )
    ]


def plan_tng_launch(loaded: Any) -> list[PlanStep]:
    """CAI-6.2: the TNG client from the tng-sdk wheel, in the background until `cai-tui tng stop`."""
    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    if answers.trustee.url is None:
        notes.append("answers.trustee.url is not set: TNG verifies the instance through <trustee url>/as/ (CAI-2.4)")
    t = answers.tng
    return [
        PlanStep(
            f"start the TNG client, its HTTP proxy on {t.proxy_host}:{t.proxy_port} (CAI-6.2)",
            [CLI, "tng", "launch", "--recipe", recipe],
            where="client",
            changes=f"starts tng in the background (proxy {t.proxy_host}:{t.proxy_port}; `cai-tui tng stop` ends it)",
            notes=tuple(notes),
        )
    ]


def plan_ask(loaded: Any) -> list[PlanStep]:
    """CAI-6.4: one chat completion, through the TNG proxy when it listens."""
    answers = _answers(loaded)
    notes: list[str] = []
    recipe = _recipe_path(loaded, notes)
    if answers.instance.public_ip is None:
        notes.append("answers.instance.public_ip is not set (the instance's public IP, CAI-3)")
    return [
        PlanStep(
            "ask the model the test prompt, through the TNG proxy when it listens (CAI-6.4)",
            [CLI, "ask", "--recipe", recipe],
            where="client",
            changes="nothing: one chat completion request",
            notes=tuple(notes),
        )
    ]


_ACTIONS: dict[str, ActionSpec] = {
    spec.id: spec
    for spec in (
        ActionSpec("model.use_public", "Use the public pre-encrypted model", "cai", plan_use_public),
        ActionSpec("model.download", "Download the model", "cai", plan_download),
        ActionSpec("model.encrypt", "Encrypt the model", "cai", plan_encrypt),
        ActionSpec("model.upload", "Upload the encrypted model to OSS", "cai", plan_upload),
        ActionSpec(
            "oss.apply_bucket_policy", "Grant the instance read access to the bucket", "cai", plan_bucket_policy
        ),
        ActionSpec("kms.create_secret", "Create the model key's KMS secret", "cai", plan_kms_secret),
        ActionSpec("cai.start_stack", "Start the CAI stack on the instance", "cai", plan_start_stack),
        ActionSpec("cai.deploy", "Deploy the CAI stack and vLLM", "cai", plan_start_stack),
        ActionSpec("cai.troubleshoot", "Troubleshoot the CAI containers", "cai", plan_troubleshoot),
        ActionSpec("bundle.collect", "Collect a support bundle", "cai", plan_bundle),
        ActionSpec("model.choose_encryption", "Choose the encryption method", "cai", plan_choose_encryption),
        ActionSpec("model.install_gocryptfs", "Install gocryptfs (fuse engine)", "cai", plan_install_gocryptfs),
        ActionSpec("model.create_key_file", "Create the model's key file", "cai", plan_create_key_file),
        ActionSpec("trustee.find_url", "Find Trustee's URL from the ALB", "cai", plan_find_trustee_url),
        ActionSpec("trustee.test_auth", "Test Trustee's handshake and services", "cai", plan_test_trustee_auth),
        ActionSpec("tng.launch", "Start the TNG client", "cai", plan_tng_launch),
        ActionSpec("inference.ask", "Ask the model through TNG", "cai", plan_ask),
    )
}


_KATA_REGISTERED = False


def _actions() -> dict[str, ActionSpec]:
    """Every action; the kata-virtcca flow's doers (one module per stage, which import this module) are added on the
    first lookup, so that importing any of them first does not import this module half-way through."""
    global _KATA_REGISTERED
    if not _KATA_REGISTERED:
        from .kata import ACTIONS as KATA_ACTIONS

        for spec in KATA_ACTIONS:
            if spec.id in _ACTIONS:
                raise RuntimeError(f"action {spec.id} is registered twice")
            _ACTIONS[spec.id] = spec
        _KATA_REGISTERED = True
    return _ACTIONS


def all_ids() -> list[str]:
    return sorted(_actions())


def get(action_id: str) -> ActionSpec | None:
    return _actions().get(action_id)


# ------------------------------------------------------------------------------------------------ apply
def _local_cli() -> list[str]:
    """How this process starts ``cai-tui``: this installation's own script (beside this interpreter), else this
    interpreter with the module — never another cai-tui that happens to be first on PATH."""
    beside = Path(sys.executable).with_name(CLI)
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    return [sys.executable, "-c", "import sys; from cai_tui.cli.main import main; sys.exit(main())"]


def local_argv(argv: Sequence[str], target: Any) -> list[str]:
    """``argv`` as it runs on ``target``: a ``cai-tui …`` line on this machine starts this installation's cai-tui."""
    from ..targets.local import LocalTarget

    if isinstance(target, LocalTarget) and argv and argv[0] == CLI:
        return [*_local_cli(), *argv[1:]]
    return list(argv)


async def apply(
    loaded: Any,
    step: PlanStep,
    target: Any,
    *,
    on_line: Callable[..., Any] | None = None,
    timeout: float = APPLY_TIMEOUT_S,
) -> Any:
    """Run ``step.argv`` on ``target`` (a :mod:`cai_tui.targets` Target), streaming lines to ``on_line``;
    returns its CommandResult. A step that still holds a placeholder is refused (ValueError)."""
    del loaded  # the plan already holds everything it needs; kept for the apply(ctx, step) shape
    if not step.runnable:
        raise ValueError(f"{step.title}: fill in the recipe first: " + "; ".join(step.notes))
    return await target.run(local_argv(step.argv, target), timeout=timeout, on_line=on_line)


__all__ = ["ActionSpec", "PlanStep", "all_ids", "apply", "get"]
