"""What the model checks share: the file names they look for, classifying a model directory, the nested-folder
mistake."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..common import (
    join,
)

if TYPE_CHECKING:
    from ...targets.base import Target


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
