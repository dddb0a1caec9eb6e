"""model.mounted (CAI-5.2): MODEL_MOUNT_POINT on the instance holds the decrypted model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..base import CheckContext, Evidence, Result
from ..common import (
    cai_answers,
    ev,
    expand_path,
    join,
    make,
    net_timeout,
    no_recipe,
)
from ..registry import check
from ._common import FIX_NESTED, _shown, classify_model_dir, nested_model

if TYPE_CHECKING:
    from ...targets.base import Target


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
    from ...targets.base import TargetError

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
