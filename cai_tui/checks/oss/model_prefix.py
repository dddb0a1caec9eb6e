"""oss.model_prefix: MODEL_OSS_BUCKET_PATH holds the encrypted model (gocryptfs cipherdir or Sam package), looking one
level up and down when it does not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..base import CheckContext, Evidence, Result
from ..common import (
    ev,
    human_bytes,
    make,
)
from ..registry import check

if TYPE_CHECKING:
    import oss2

from ._common import (
    CONF,
    DIRIV,
    LIST_PAGES_MAX,
    LOOK_DOWN_MAX,
    STAGE_UPLOAD,
    OssFailure,
    _setup,
    call,
    failure_result,
    shown_path,
)


@dataclass
class Level:
    files: dict[str, int]  # name under the prefix -> size
    dirs: list[str]  # sub-prefixes (ending in "/")


def list_level(bucket: oss2.Bucket, prefix: str) -> Level:
    files: dict[str, int] = {}
    dirs: list[str] = []
    marker = ""
    for _ in range(LIST_PAGES_MAX):
        res = bucket.list_objects(prefix=prefix, delimiter="/", marker=marker, max_keys=1000)
        for obj in res.object_list:
            files[obj.key[len(prefix) :]] = int(obj.size)
        dirs.extend(res.prefix_list)
        if not res.is_truncated:
            break
        marker = res.next_marker
    return Level(files, dirs)


def total_size(bucket: oss2.Bucket, prefix: str) -> tuple[int, int]:
    count = size = 0
    marker = ""
    for _ in range(LIST_PAGES_MAX):
        res = bucket.list_objects(prefix=prefix, marker=marker, max_keys=1000)
        for obj in res.object_list:
            count += 1
            size += int(obj.size)
        if not res.is_truncated:
            break
        marker = res.next_marker
    return count, size


def parent_prefix(prefix: str) -> str | None:
    if not prefix:
        return None
    head = prefix.rstrip("/").rpartition("/")[0]
    return head + "/" if head else ""


def read_small(bucket: oss2.Bucket, key: str, limit: int = 1 << 20) -> bytes:
    result = bucket.get_object(key)
    try:
        return bytes(result.read(limit))
    finally:
        result.close()


def find_conf_around(bucket: oss2.Bucket, prefix: str, level: Level) -> tuple[str | None, str | None]:
    """(sub-prefix one level down holding gocryptfs.conf, parent prefix holding gocryptfs.conf)."""
    down = None
    for sub in level.dirs[:LOOK_DOWN_MAX]:
        if CONF in list_level(bucket, sub).files:
            down = sub
            break
    up = None
    parent = parent_prefix(prefix)
    if parent is not None and CONF in list_level(bucket, parent).files:
        up = parent
    return down, up


@check(
    "oss.model_prefix",
    "MODEL_OSS_BUCKET_PATH holds the encrypted model (gocryptfs cipherdir or Sam package)",
    stage=STAGE_UPLOAD,
    depends=("oss.bucket",),
)
async def oss_model_prefix(ctx: CheckContext) -> Result:
    from ...gocryptfs import GocryptfsError
    from ...gocryptfs.config import GocryptfsConfig

    got = await _setup(ctx, 0.5)
    if isinstance(got, Result):
        return got
    answers, bucket, bucket_name, prefix, endpoint = got
    method = answers.model.encryption_method
    where = shown_path(bucket_name, prefix)
    src = f"ListObjects {bucket_name} prefix={prefix!r} delimiter='/' @ {endpoint}"
    evidence: list[Evidence] = [ev(ctx, where, "answers.oss.bucket_path (MODEL_OSS_BUCKET_PATH)")]
    level = await call(list_level, bucket, prefix)
    if isinstance(level, OssFailure):
        return failure_result(ctx, level, evidence, src, f"cannot list {where}")
    shown = sorted(level.files)[:8] + level.dirs[:4]
    evidence.append(
        ev(ctx, f"{len(level.files)} object(s), {len(level.dirs)} folder(s): {', '.join(shown) or '(empty)'}", src)
    )
    from ...actions.model_upload import MARKER_NAME

    if MARKER_NAME in level.files:
        return make(
            ctx,
            "fail",
            f"the upload to {where} has not finished: the marker {MARKER_NAME} is still there",
            evidence,
            (
                "model-files-missing",
                "Run the same `cai-tui model upload … --recipe …` again: it resumes, verifies every object's size and "
                "CRC-64, and removes the marker only when the upload is complete (CAI-1.7).",
            ),
        )
    has_conf, has_diriv = CONF in level.files, DIRIV in level.files
    fix_path = (
        "Point MODEL_OSS_BUCKET_PATH (oss.bucket_path) at the folder that holds gocryptfs.conf and gocryptfs.diriv"
    )

    if method == "sam":
        if has_conf:
            return make(
                ctx,
                "fail",
                f"{where} holds a gocryptfs cipherdir but MODEL_ENCRYPTION_METHOD is sam",
                evidence,
                (
                    "model-not-gocryptfs",
                    "Set model.encryption_method (MODEL_ENCRYPTION_METHOD) to gocryptfs, or upload the Sam package.",
                ),
            )
        if not level.files and not level.dirs:
            return make(
                ctx,
                "fail",
                f"nothing is uploaded at {where}",
                evidence,
                ("model-not-gocryptfs", "Upload the Sam package there (CAI-1.7)."),
            )
        if not level.files:
            return make(
                ctx,
                "fail",
                f"{where} holds only folders ({', '.join(level.dirs[:4])}): the Sam package is probably one level down",
                evidence,
                (
                    "model-not-gocryptfs",
                    "Point MODEL_OSS_BUCKET_PATH at the Sam output folder (./<key ID>/ of do_content_packager.sh).",
                ),
            )
        count, size = len(level.files), sum(level.files.values())
        return make(
            ctx,
            "pass",
            f"{where} holds {count} object(s) ({human_bytes(size)}): a Sam package (not a gocryptfs cipherdir)",
            evidence,
            objects=count,
            size=size,
        )

    if not has_conf:
        around = await call(find_conf_around, bucket, prefix, level)
        if isinstance(around, OssFailure):
            return failure_result(ctx, around, evidence, src, f"cannot list around {where}")
        down, up = around
        if down is not None:
            evidence.append(ev(ctx, f"{down}{CONF} exists", f"ListObjects {bucket_name} prefix={down!r}"))
            return make(
                ctx,
                "fail",
                f"one level too high: the gocryptfs cipherdir is {shown_path(bucket_name, down)}, not {where}",
                evidence,
                ("model-not-gocryptfs", f"{fix_path}: {shown_path(bucket_name, down)}."),
                suggested=shown_path(bucket_name, down),
            )
        if up is not None:
            evidence.append(ev(ctx, f"{up}{CONF} exists", f"ListObjects {bucket_name} prefix={up!r}"))
            return make(
                ctx,
                "fail",
                f"one level too low: {where} is a folder inside the cipherdir {shown_path(bucket_name, up)}",
                evidence,
                ("model-not-gocryptfs", f"{fix_path}: {shown_path(bucket_name, up)}."),
                suggested=shown_path(bucket_name, up),
            )
        if "config.json" in level.files:
            why = f"{where} holds a plaintext model (config.json), not a gocryptfs cipherdir"
        elif not level.files and not level.dirs:
            why = f"nothing is uploaded at {where}"
        elif has_diriv:
            why = f"{where} has gocryptfs.diriv but no gocryptfs.conf (an incomplete upload or a sub-folder of a cipherdir)"
        else:
            why = (
                f"{where} has no gocryptfs.conf: not a gocryptfs cipherdir (a Sam package? then set the method to sam)"
            )
        return make(
            ctx,
            "fail",
            why,
            evidence,
            (
                "model-not-gocryptfs",
                f"{fix_path}, or set MODEL_ENCRYPTION_METHOD to match how the model was encrypted; upload the whole cipher/ directory (CAI-1.7).",
            ),
        )

    conf_src = f"GetObject {bucket_name}/{prefix}{CONF} @ {endpoint}"
    raw = await call(read_small, bucket, prefix + CONF)
    if isinstance(raw, OssFailure):
        return failure_result(ctx, raw, evidence, conf_src, f"cannot read {prefix}{CONF}")
    try:
        config = GocryptfsConfig.from_json(raw, source=f"{where}{CONF}")
    except GocryptfsError as exc:
        evidence.append(ev(ctx, str(exc), conf_src))
        return make(
            ctx,
            "fail",
            f"{where}{CONF} is not a usable gocryptfs config: {exc}",
            evidence,
            ("model-not-gocryptfs", "Re-upload gocryptfs.conf from the cipher directory (gocryptfs v2.4.0 defaults)."),
        )
    evidence.append(
        ev(
            ctx,
            f"Creator={config.creator!r} Version={config.version} FeatureFlags={','.join(config.feature_flags)} "
            f"scrypt N={config.scrypt.n}",
            conf_src,
        )
    )
    totals = await call(total_size, bucket, prefix)
    count, size = (len(level.files), sum(level.files.values())) if isinstance(totals, OssFailure) else totals
    data: dict[str, Any] = {"objects": count, "size": size, "feature_flags": list(config.feature_flags)}
    if not has_diriv:
        return make(
            ctx,
            "fail",
            f"{where} has gocryptfs.conf but no gocryptfs.diriv: the upload is incomplete",
            evidence,
            ("model-not-gocryptfs", "Upload the whole cipher/ directory, gocryptfs.diriv included (CAI-1.7)."),
            **data,
        )
    if not config.is_default_format:
        return make(
            ctx,
            "warn",
            f"{where} is a gocryptfs cipherdir but not in the default format ({','.join(config.feature_flags)})",
            evidence,
            (
                "model-not-gocryptfs",
                "The CAI stack supports gocryptfs v2.4.0 with default parameters: re-encrypt with `gocryptfs -init` defaults.",
            ),
            **data,
        )
    return make(
        ctx, "pass", f"{where} is a gocryptfs cipherdir: {count} object(s), {human_bytes(size)}", evidence, **data
    )
