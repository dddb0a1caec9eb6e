"""disk.capacity (CAI-3): the instance's system disk has room for the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..base import CheckContext, Evidence, Result
from ..common import (
    cai_answers,
    df,
    du_kib,
    ev,
    expand_path,
    human_bytes,
    make,
    net_timeout,
    no_recipe,
)
from ..registry import check
from ._common import SYSTEM_DISK_SLACK, TIB_KIB

if TYPE_CHECKING:
    from ...recipe.cai import CaiAnswers
    from ...targets.base import Target


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
