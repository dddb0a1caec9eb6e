"""model.encrypted (CAI-1.5): the cipher directory is a valid gocryptfs cipherdir the password opens."""

from __future__ import annotations

import asyncio
import posixpath
from typing import TYPE_CHECKING, Any

from ..base import CheckContext, Evidence, Result
from ..common import (
    SecretProblem,
    cai_answers,
    ev,
    expand_path,
    join,
    make,
    no_recipe,
    secret,
)
from ..registry import check
from ._common import CONF, DIRIV, FIX_NESTED, LOOK_DOWN_MAX, _shown

if TYPE_CHECKING:
    from ...targets.base import Target


async def plaintext_root(target: Target, cipher_dir: str, config: Any, master_key: bytes) -> list[str]:
    """Decrypted names at the root of a cipherdir read through ``target`` (gocryptfs.conf/diriv excluded)."""
    from ...gocryptfs.names import DIRIV_LEN, LONGNAME_SUFFIX, NameCipher, is_longname_content, is_longname_file

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
    from ...gocryptfs import GocryptfsError, WrongPassword
    from ...gocryptfs.config import GocryptfsConfig

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
