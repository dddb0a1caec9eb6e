"""Model checks: the plaintext directory (CAI-1.1), the cipherdir and its password (CAI-1.5), the decrypted model at
MODEL_MOUNT_POINT on the instance (CAI-5.2) and disk space (CAI-3).

Every file is read through a Target, so the same checks work on this machine, over SSH or on a captured rootfs.
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import CheckContext, Evidence, Result
from .common import (
    SecretProblem,
    cai_answers,
    df,
    du_kib,
    ev,
    expand_path,
    human_bytes,
    join,
    make,
    net_timeout,
    no_recipe,
    secret,
)
from .registry import check

if TYPE_CHECKING:
    from ..recipe.cai import CaiAnswers
    from ..targets.base import Target

CONF = "gocryptfs.conf"
DIRIV = "gocryptfs.diriv"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tiktoken.model", "qwen.tiktoken")
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
LOOK_DOWN_MAX = 12
TIB_KIB = 1024**3  # 1 TiB in KiB
SYSTEM_DISK_SLACK = 0.95  # df shows a little less than the disk's size
FIX_NESTED = (
    "The model files sit in a sub-folder (the seed's `cp -r <model dir> ~/mount/plain` creates plain/<name>/): either "
    "point vLLM at the sub-folder (--model=<mount point>/<name>) or re-encrypt with the files at the root "
    "(`cp -r <model dir>/. ~/mount/plain/`)."
)


def _modelscope_default(model_id: str) -> str:
    return f"~/.cache/modelscope/hub/models/{model_id}"


@dataclass
class ModelDirFacts:
    entries: list[str]
    has_config: bool
    tokenizer: list[str]
    weights: list[str]


def classify_model_dir(entries: list[str]) -> ModelDirFacts:
    names = set(entries)
    return ModelDirFacts(
        entries=sorted(entries),
        has_config="config.json" in names,
        tokenizer=[n for n in TOKENIZER_FILES if n in names],
        weights=sorted(n for n in entries if n.endswith(WEIGHT_SUFFIXES) and not n.startswith("training_args")),
    )


async def nested_model(target: Target, path: str, entries: list[str]) -> str | None:
    """The sub-folder of ``path`` that holds config.json (the nested-folder mistake), if any."""
    for name in entries[:LOOK_DOWN_MAX]:
        if name.startswith("."):
            continue
        try:
            if await target.exists(join(path, name, "config.json")):
                return name
        except OSError:
            continue
    return None


def _shown(entries: list[str], n: int = 8) -> str:
    return (
        ", ".join(entries[:n]) + (f", … ({len(entries)} in all)" if len(entries) > n else "") if entries else "(empty)"
    )


# --------------------------------------------------------------------------------------------- model.local_dir


@check(
    "model.local_dir", "Plaintext model directory is complete (config.json, tokenizer, weights)", stage="model-source"
)
async def model_local_dir(ctx: CheckContext) -> Result:
    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    model = answers.model
    if model.source == "public-encrypted":
        return Result("skip", "the seed's pre-encrypted model is used (CAI-1.0): no plaintext model here")
    target = ctx.target("workstation")
    if target is None:  # pragma: no cover
        return Result("skip", "no workstation target")
    given = model.local_dir or _modelscope_default(model.model_id)
    path = await expand_path(target, given)
    field = "answers.model.local_dir" if model.local_dir else f"modelscope cache of {model.model_id}"
    evidence: list[Evidence] = [ev(ctx, path, field, target.name)]
    try:
        entries = await target.listdir(path)
    except FileNotFoundError:
        if not model.local_dir:
            return make(
                ctx,
                "skip",
                f"{model.model_id} is not downloaded here yet ({path}); set model.local_dir for a model elsewhere",
                evidence,
            )
        return make(
            ctx,
            "fail",
            f"{path} does not exist",
            evidence,
            (
                "model-files-missing",
                f"Download the model (`modelscope download --model {model.model_id}`, CAI-1.1) or set model.local_dir "
                "to the directory that holds config.json.",
            ),
        )
    except OSError as exc:
        return make(
            ctx,
            "fail",
            f"cannot list {path}: {exc.strerror or exc}",
            evidence,
            ("model-files-missing", "Check the path and its permissions."),
        )
    facts = classify_model_dir(entries)
    evidence.append(ev(ctx, _shown(facts.entries), f"ls {path}", target.name))
    if not facts.has_config:
        sub = await nested_model(target, path, facts.entries)
        if sub is not None:
            evidence.append(ev(ctx, f"{join(path, sub, 'config.json')} exists", f"ls {join(path, sub)}", target.name))
            return make(
                ctx,
                "fail",
                f"config.json is one level down, in {sub}/: the model sits in a sub-folder",
                evidence,
                ("model-layout-nested", f"Set model.local_dir to {join(path, sub)}."),
                suggested=join(path, sub),
            )
    missing = [
        what
        for what, ok in (
            ("config.json", facts.has_config),
            ("a tokenizer", facts.tokenizer),
            ("weights", facts.weights),
        )
        if not ok
    ]
    if missing:
        return make(
            ctx,
            "fail",
            f"{path} lacks {', '.join(missing)}",
            evidence,
            ("model-files-missing", "Download the model again (CAI-1.1); an interrupted download leaves files out."),
        )
    details: list[str] = []
    try:
        config = json.loads(await target.read_file(join(path, "config.json"), max_bytes=1 << 20))
        if isinstance(config, dict):
            arch = config.get("architectures") or [config.get("model_type", "?")]
            details.append(f"architecture {', '.join(map(str, arch))}")
    except (OSError, ValueError) as exc:
        return make(
            ctx,
            "fail",
            f"config.json does not parse ({exc})",
            evidence,
            ("model-files-missing", "Download the model again (CAI-1.1)."),
        )
    index = "model.safetensors.index.json"
    if index in facts.entries:
        try:
            doc = json.loads(await target.read_file(join(path, index), max_bytes=16 << 20))
            shards = sorted({str(v) for v in (doc.get("weight_map") or {}).values()})
        except (OSError, ValueError, AttributeError):
            shards = []
        absent = [s for s in shards if s not in facts.entries]
        if absent:
            return make(
                ctx,
                "fail",
                f"{len(absent)} weight shard(s) named by {index} are missing: {_shown(absent, 4)}",
                evidence,
                ("model-files-missing", "Download the model again (CAI-1.1); some shards did not arrive."),
            )
    size_kib = await du_kib(target, path, net_timeout(ctx, 0.5))
    size = (size_kib or 0) * 1024
    summary = f"{path}: config.json, {', '.join(facts.tokenizer)}, {len(facts.weights)} weight file(s)"
    if size_kib is not None:
        summary += f", {human_bytes(size)}"
        evidence.append(ev(ctx, f"{size_kib} KiB", f"du -sk {path}", target.name))
    if details:
        summary += f" ({details[0]})"
    return make(ctx, "pass", summary, evidence, size=size, weights=facts.weights)


# --------------------------------------------------------------------------------------------- model.encrypted


async def plaintext_root(target: Target, cipher_dir: str, config: Any, master_key: bytes) -> list[str]:
    """Decrypted names at the root of a cipherdir read through ``target`` (gocryptfs.conf/diriv excluded)."""
    from ..gocryptfs.names import DIRIV_LEN, LONGNAME_SUFFIX, NameCipher, is_longname_content, is_longname_file

    keys = config.keys(master_key)
    entries = [e for e in await target.listdir(cipher_dir) if e not in (CONF, DIRIV) and not is_longname_file(e)]
    if config.plaintext_names:
        return sorted(entries)
    iv = await target.read_file(join(cipher_dir, DIRIV), max_bytes=DIRIV_LEN + 1)
    if len(iv) != DIRIV_LEN:
        raise ValueError(f"{DIRIV} is {len(iv)} bytes, expected {DIRIV_LEN}")
    names = NameCipher(keys.names, raw64=config.raw64, long_name_max=config.effective_long_name_max)
    out = []
    for entry in entries:
        encoded = entry
        if is_longname_content(entry):
            encoded = (await target.read_file(join(cipher_dir, entry + LONGNAME_SUFFIX), max_bytes=400)).decode("ascii")
        out.append(names.decrypt(encoded, iv))
    return sorted(out)


async def _find_conf_around(target: Target, path: str) -> tuple[str | None, str | None]:
    down = None
    try:
        for name in (await target.listdir(path))[:LOOK_DOWN_MAX]:
            if await target.exists(join(path, name, CONF)):
                down = join(path, name)
                break
    except OSError:
        pass
    parent = posixpath.dirname(path.rstrip("/"))
    up = parent if parent and parent != path and await target.exists(join(parent, CONF)) else None
    return down, up


@check(
    "model.encrypted", "The cipher directory is a valid gocryptfs cipherdir the password opens", stage="model-encrypt"
)
async def model_encrypted(ctx: CheckContext) -> Result:
    from ..gocryptfs import GocryptfsError, WrongPassword
    from ..gocryptfs.config import GocryptfsConfig

    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    model = answers.model
    if model.source == "public-encrypted":
        return Result("skip", "the seed's pre-encrypted model is used (CAI-1.0)")
    if not model.cipher_dir:
        return Result("skip", "model.cipher_dir is not set yet (CAI-1.5)")
    target = ctx.target("workstation")
    if target is None:  # pragma: no cover
        return Result("skip", "no workstation target")
    path = await expand_path(target, model.cipher_dir)
    evidence: list[Evidence] = [ev(ctx, path, "answers.model.cipher_dir", target.name)]
    if model.encryption_method == "sam":
        return await _sam_dir(ctx, target, path, evidence)
    conf_path = join(path, CONF)
    try:
        raw = await target.read_file(conf_path, max_bytes=1 << 20)
    except OSError as exc:
        down, up = await _find_conf_around(target, path)
        where = f"one level down: {down}" if down else f"one level up: {up}" if up else ""
        evidence.append(ev(ctx, f"{conf_path}: {exc.strerror or exc}", f"read {conf_path}", target.name))
        return make(
            ctx,
            "fail",
            f"{path} has no gocryptfs.conf"
            + (f" (the cipherdir is {where})" if where else ": not a gocryptfs cipherdir"),
            evidence,
            (
                "model-not-gocryptfs",
                f"Set model.cipher_dir to {down or up}."
                if where
                else "Create it with `gocryptfs -init` (CAI-1.5) or the native writer.",
            ),
        )
    try:
        config = GocryptfsConfig.from_json(raw, source=conf_path)
    except GocryptfsError as exc:
        evidence.append(ev(ctx, str(exc), f"read {conf_path}", target.name))
        return make(
            ctx,
            "fail",
            f"gocryptfs.conf is not usable: {exc}",
            evidence,
            ("model-not-gocryptfs", "Re-create the cipherdir with gocryptfs v2.4.0 defaults (CAI-1.5)."),
        )
    evidence.append(
        ev(
            ctx,
            f"Creator={config.creator!r} FeatureFlags={','.join(config.feature_flags)} scrypt N={config.scrypt.n}",
            f"read {conf_path}",
            target.name,
        )
    )
    if config.dir_iv and not await target.exists(join(path, DIRIV)):
        return make(
            ctx,
            "fail",
            f"{path} has gocryptfs.conf but no gocryptfs.diriv",
            evidence,
            ("model-not-gocryptfs", "The cipherdir is incomplete: re-create it (CAI-1.5)."),
        )
    if model.password is None:
        return make(
            ctx,
            "warn",
            "valid gocryptfs cipherdir; the password was not checked (model.password is not set)",
            evidence,
            ("model-password-wrong", "Set model.password to the key file, e.g. file:~/cachefs-password (CAI-1.4)."),
        )
    try:
        password = secret(ctx, model.password, "answers.model.password")
    except SecretProblem as exc:
        return exc.result
    try:
        master = await asyncio.to_thread(config.decrypt_master_key, password)
    except WrongPassword:
        evidence.append(ev(ctx, "password incorrect", f"scrypt + AES-GCM unwrap of {conf_path}", target.name))
        return make(
            ctx,
            "fail",
            "model.password does not open the cipherdir (password incorrect)",
            evidence,
            (
                "model-password-wrong",
                "model.password must reference the key file the model was encrypted with (CAI-1.4/1.5).",
            ),
        )
    except (GocryptfsError, ValueError) as exc:
        return make(ctx, "fail", f"cannot unlock: {exc}", evidence, ("model-password-wrong", str(exc)))
    try:
        names = await plaintext_root(target, path, config, master)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        evidence.append(ev(ctx, str(exc), f"decrypt names in {path}", target.name))
        return make(
            ctx,
            "fail",
            f"the names at the root of {path} do not decrypt with this password ({exc})",
            evidence,
            ("model-not-gocryptfs", "The cipherdir is corrupt or mixed from two encryptions: re-create it (CAI-1.5)."),
        )
    evidence.append(ev(ctx, _shown(names), f"decrypted names at the root of {path}", target.name))
    if "config.json" in names:
        return make(
            ctx,
            "pass",
            f"valid gocryptfs cipherdir; the password opens it; the model root holds config.json ({len(names)} entries)",
            evidence,
            entries=len(names),
        )
    if len(names) == 1:
        return make(
            ctx,
            "fail",
            f"the encrypted model root holds only {names[0]}/: the model was copied into a sub-folder",
            evidence,
            ("model-layout-nested", FIX_NESTED),
            subfolder=names[0],
        )
    return make(
        ctx,
        "warn",
        "the password opens the cipherdir, but its root has no config.json" + ("" if names else " (it is empty)"),
        evidence,
        (
            "model-layout-nested",
            "Copy the model files into the mounted plain/ directory so config.json is at its root (CAI-1.5).",
        ),
    )


async def _sam_dir(ctx: CheckContext, target: Target, path: str, evidence: list[Evidence]) -> Result:
    try:
        entries = await target.listdir(path)
    except OSError as exc:
        return make(
            ctx,
            "fail",
            f"cannot list {path}: {exc.strerror or exc}",
            evidence,
            ("model-not-gocryptfs", "Run do_content_packager.sh (CAI-1.6); its output is ./<key ID>/."),
        )
    evidence.append(ev(ctx, _shown(entries), f"ls {path}", target.name))
    if CONF in entries:
        return make(
            ctx,
            "fail",
            f"{path} is a gocryptfs cipherdir but model.encryption_method is sam",
            evidence,
            (
                "model-not-gocryptfs",
                "Set model.encryption_method to gocryptfs, or point model.cipher_dir at the Sam output.",
            ),
        )
    if not entries:
        return make(
            ctx, "fail", f"{path} is empty", evidence, ("model-not-gocryptfs", "Run do_content_packager.sh (CAI-1.6).")
        )
    return make(
        ctx,
        "pass",
        f"{path} holds {len(entries)} entries of a Sam package (its contents are checked when cachefs mounts it)",
        evidence,
    )


# --------------------------------------------------------------------------------------------- model.mounted


@check(
    "model.mounted",
    "MODEL_MOUNT_POINT holds the decrypted model (config.json at its root)",
    stage="cai-stack",
    runs_on="instance",
)
async def model_mounted(ctx: CheckContext) -> Result:
    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    target = ctx.target("instance")
    if target is None:
        return Result("skip", "no instance target (--target ssh://root@<instance>)")
    path = await expand_path(target, answers.service.mount_point)
    evidence: list[Evidence] = [ev(ctx, path, "answers.service.mount_point (MODEL_MOUNT_POINT)", target.name)]
    fix_unmounted = (
        "model-not-mounted",
        "The cachefs container has not mounted the decrypted model: `docker compose ps` must show cai-docker-cachefs-1 "
        "healthy; read `docker logs cai-docker-cachefs-1` (a wrong key, a wrong OSS path or method: see CAI-F1..F4).",
    )
    try:
        entries: list[str] | None = await target.listdir(path)
    except FileNotFoundError:
        entries = None
    except OSError as exc:
        return make(ctx, "fail", f"cannot list {path}: {exc.strerror or exc}", evidence, fix_unmounted)
    if not entries:
        stack = await _cachefs_container(ctx, target)
        if stack is None:
            state = "does not exist" if entries is None else "is empty"
            return make(
                ctx,
                "skip",
                f"{path} {state} and no cachefs container exists on {target.name}: the CAI stack has not run yet (CAI-5.2)",
                evidence,
            )
        evidence.append(ev(ctx, stack, "docker ps -a --filter name=cachefs", target.name))
        state = "does not exist" if entries is None else "is empty"
        return make(
            ctx, "fail", f"{path} {state}: the decrypted model is not mounted ({stack})", evidence, fix_unmounted
        )
    evidence.append(ev(ctx, _shown(entries), f"ls -a {path}", target.name))
    mount_line = await _mount_line(target, path)
    if mount_line:
        evidence.append(ev(ctx, mount_line, "/proc/mounts", target.name))
    facts = classify_model_dir(entries)
    if facts.has_config:
        return make(
            ctx,
            "pass",
            f"{path} holds the plaintext model: config.json, {len(facts.weights)} weight file(s), {len(entries)} entries",
            evidence,
            entries=len(entries),
        )
    sub = await nested_model(target, path, facts.entries)
    if sub is not None:
        evidence.append(ev(ctx, f"{join(path, sub, 'config.json')} exists", f"ls {join(path, sub)}", target.name))
        return make(
            ctx,
            "fail",
            f"config.json is one level down, in {sub}/: vLLM's --model={path} will not find it",
            evidence,
            ("model-layout-nested", FIX_NESTED.replace("<mount point>", path).replace("<name>", sub)),
            suggested=join(path, sub),
        )
    return make(ctx, "fail", f"{path} has no config.json ({_shown(facts.entries, 5)})", evidence, fix_unmounted)


async def _cachefs_container(ctx: CheckContext, target: Target) -> str | None:
    """``<name> <status>`` of the CAI stack's cachefs container on the target, None when there is none (or no docker)."""
    from ..targets.base import TargetError

    try:
        res = await target.run(
            ["docker", "ps", "-a", "--filter", "name=cachefs", "--format", "{{.Names}} {{.Status}}"],
            timeout=net_timeout(ctx, 0.3),
        )
    except TargetError:  # a sysroot without a machine behind it: no containers to see
        return None
    lines = [ln.strip() for ln in res.stdout.splitlines() if ln.strip()] if res.ok else []
    return lines[0] if lines else None


async def _mount_line(target: Target, path: str) -> str | None:
    try:
        text = (await target.read_file("/proc/mounts", max_bytes=1 << 20)).decode("utf-8", "replace")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == path.rstrip("/"):
            return line
    return None


# --------------------------------------------------------------------------------------------- disk.capacity


async def _model_size(ctx: CheckContext, answers: CaiAnswers) -> tuple[int | None, str]:
    """Bytes of the model and where that number comes from (local directories first, then the OSS prefix check)."""
    target = ctx.target("workstation")
    timeout = net_timeout(ctx, 0.3)
    if target is not None:
        for given, what in (
            (answers.model.local_dir, "model.local_dir"),
            (answers.model.cipher_dir, "model.cipher_dir"),
        ):
            if not given:
                continue
            path = await expand_path(target, given)
            if not await target.exists(path):
                continue
            res = await target.run(["du", "-sk", "--apparent-size", path], timeout=timeout)
            kib: int | None = None
            if res.ok and res.stdout.strip():
                try:
                    kib = int(res.stdout.split()[0])
                except (ValueError, IndexError):
                    kib = None
            if kib is None:
                kib = await du_kib(target, path, timeout)
            if kib is not None:
                return kib * 1024, f"du -sk {path} ({what}, {target.name})"
    done = ctx.results.get("oss.model_prefix")
    if done is not None and isinstance(done.data.get("size"), int):
        return int(done.data["size"]), "oss.model_prefix (objects under MODEL_OSS_BUCKET_PATH)"
    return None, ""


async def _is_tee_instance(target: Target) -> bool:
    for path in ("/dev/tdx_guest", "/sys/firmware/tdx"):
        try:
            if await target.exists(path):
                return True
        except OSError:
            continue
    return False


@check(
    "disk.capacity",
    "The instance's system disk has room for the model (≥ 2 × model size; ≥ 1 TiB per the seed)",
    stage="instance",
    runs_on="instance",
)
async def disk_capacity(ctx: CheckContext) -> Result:
    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    target = ctx.target("instance")
    if target is None:
        return Result("skip", "no instance target (--target ssh://root@<instance>)")
    if target.name.startswith("sysroot:"):
        return Result("skip", f"{target.name} is a file tree: its disk cannot be measured (give a machine target)")
    path = "/"
    line, why = await df(target, path, net_timeout(ctx, 0.4))
    evidence: list[Evidence] = []
    if line is None:
        evidence.append(ev(ctx, why, f"df -Pk {path}", target.name))
        return make(ctx, "unknown", f"cannot measure free space on {target.name}: {why}", evidence)
    evidence.append(ev(ctx, line.raw, f"df -Pk {path}", target.name))
    free = line.avail_kib * 1024
    total = line.total_kib * 1024
    size, size_source = await _model_size(ctx, answers)
    data: dict[str, Any] = {"free": free, "total": total, "model_size": size}
    fix = (
        "disk-too-small",
        "Give the instance a system disk of at least 1 TiB and more than twice the model's size (CAI-3): resize the "
        "cloud disk in the ECS console, then grow the partition and file system (growpart + resize2fs/xfs_growfs).",
    )
    if size is not None:
        evidence.append(ev(ctx, human_bytes(size), size_source))
        if free < 2 * size:
            return make(
                ctx,
                "fail",
                f"{human_bytes(free)} free on {line.mount}, the model needs 2 × {human_bytes(size)} = {human_bytes(2 * size)}",
                evidence,
                fix,
                **data,
            )
    real_instance = target.name != "local" or await _is_tee_instance(target)
    if line.total_kib < SYSTEM_DISK_SLACK * TIB_KIB:
        if real_instance:
            return make(
                ctx,
                "warn",
                f"the system disk is {human_bytes(total)}: the seed asks for at least 1 TiB",
                evidence,
                fix,
                **data,
            )
        evidence.append(
            ev(
                ctx,
                "not a TDX guest: the seed's 1 TiB system-disk guidance is not applied",
                "/dev/tdx_guest",
                target.name,
            )
        )
    need = (
        f" (model {human_bytes(size)}, needs {human_bytes(2 * size)})" if size is not None else " (model size unknown)"
    )
    return make(
        ctx, "pass", f"{human_bytes(free)} free of {human_bytes(total)} on {line.mount}{need}", evidence, **data
    )
