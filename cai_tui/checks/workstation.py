"""Checks of the workstation that encrypts the model: the gocryptfs binary of the fuse engine (CAI-1.3) and the model's
key file (CAI-1.4)."""

from __future__ import annotations

from typing import Any, cast

from .base import CheckContext, Result, Status
from .common import cai_answers, ev, make, no_recipe
from .registry import check

STAGE = "model-encrypt"
ROLE = "workstation"


@check(
    "gocryptfs.version",
    "gocryptfs is installed for the fuse engine, v2.4.0 as the document pins (CAI-1.3)",
    stage=STAGE,
    runs_on=ROLE,
    required=False,
)
async def gocryptfs_version(ctx: CheckContext) -> Result:
    from ..actions.gocryptfs_tool import DOCUMENTED_INSTALL, FIX_FAQ, judge, parse_version

    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    model = answers.model
    if model.source == "public-encrypted":
        return make(ctx, "skip", "model.source is public-encrypted: nothing is encrypted here, no gocryptfs needed")
    if model.encryption_method == "sam":
        return make(ctx, "skip", "model.encryption_method is sam: the Sam packager encrypts, gocryptfs is not used")
    if model.gocryptfs_engine == "native":
        return make(ctx, "skip", "model.gocryptfs_engine is native: cai-tui writes the format itself, no binary needed")
    target = ctx.target(ROLE)
    assert target is not None
    install = (
        FIX_FAQ,
        "Install gocryptfs v2.4.0: `cai-tui tools install-gocryptfs` (the system's package), or the "
        f"document's static binary: `{DOCUMENTED_INSTALL}`. Or set model.gocryptfs_engine to native (no binary).",
    )
    path = await target.which("gocryptfs")
    if path is None:
        return make(
            ctx,
            "fail",
            f"gocryptfs is not installed on {target.name} (the fuse engine runs it)",
            [ev(ctx, "not found on PATH", "which gocryptfs", target.name)],
            install,
        )
    res = await target.run([path, "-version"], timeout=10)
    line = (res.stdout or res.stderr).strip().splitlines()
    first = line[0] if line else f"(no output, exit {res.rc})"
    version = parse_version(res.stdout + "\n" + res.stderr)
    status, words = judge(version)
    evidence = [ev(ctx, first, f"{path} -version", target.name)]
    data: dict[str, Any] = {"path": path, "version": ".".join(map(str, version)) if version else None}
    if status == "pass":
        return make(ctx, "pass", words, evidence, **data)
    return make(ctx, cast(Status, status), words, evidence, install, **data)


@check(
    "model.key_file",
    "The model key's file exists, holds a key on its first line and is private (mode 600) (CAI-1.4)",
    stage=STAGE,
    runs_on=ROLE,
)
async def model_key_file(ctx: CheckContext) -> Result:
    from ..actions.key_file import FIX_FAQ, inspect, key_ref
    from ..recipe.secrets import SecretUnavailable

    answers = cai_answers(ctx)
    if answers is None:
        return no_recipe()
    key = key_ref(answers)
    create = (
        FIX_FAQ,
        f"Set {key.field} to file:~/cachefs-password (or env:NAME, keyring:SERVICE/NAME, prompt), then create the "
        "file with `cai-tui tools key-file --recipe FILE` (a random password, mode 0600) or write your own.",
    )
    if key.ref is None:
        return make(ctx, "fail", f"{key.field} is not set (the {key.method} key)", [], create)
    path = key.path
    if path is None:
        source = f"{key.field} = {key.ref}"
        try:
            ctx.secret(key.ref, key.field)
        except SecretUnavailable as e:
            return make(
                ctx,
                "fail",
                f"{key.ref} cannot be resolved here: {e}",
                [ev(ctx, str(e), source)],
                (
                    FIX_FAQ,
                    f"Make {key.ref} resolvable here (export the variable, fill the keyring, or run "
                    "interactively for `prompt`), or set it to a file: reference.",
                ),
            )
        return make(ctx, "pass", f"{key.ref} resolves to a key (value not shown)", [ev(ctx, "resolved", source)])
    state, words = inspect(path)
    evidence = [ev(ctx, words, f"stat {path}")]
    if state == "ok":
        return make(ctx, "pass", words, evidence, path=str(path))
    if state == "open":
        fix = (FIX_FAQ, f"The key file must be private: run `chmod 600 {path}`.")
        return make(ctx, "fail", words, evidence, fix, path=str(path))
    if state == "absent":
        return make(ctx, "fail", f"the key file of {key.field} is missing: {words}", evidence, create, path=str(path))
    fix = (FIX_FAQ, f"Write the key on the first line of {path} (mode 0600), or point {key.field} at another file.")
    return make(ctx, "fail", words, evidence, fix, path=str(path))
