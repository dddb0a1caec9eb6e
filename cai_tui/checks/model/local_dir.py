"""model.local_dir (CAI-1.1): the plaintext model directory is complete (config.json, tokenizer, weights)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..base import CheckContext, Evidence, Result
from ..common import (
    cai_answers,
    du_kib,
    ev,
    expand_path,
    human_bytes,
    join,
    make,
    net_timeout,
    no_recipe,
)
from ..registry import check
from ._common import _modelscope_default, _shown, classify_model_dir, nested_model

if TYPE_CHECKING:
    pass


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
