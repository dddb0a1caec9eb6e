"""Validate a plaintext model directory (CAI-1.1): config.json, tokenizer, weight shards, total size.

:func:`validate_model_dir` never raises for a bad model; it returns a :class:`ModelDirReport` whose ``problems`` say
what is wrong and how to fix it (a model in a sub-folder, a shard named by the index but absent, a truncated
safetensors file, an unfinished download).
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field

from . import human_bytes

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer.model",
    "vocab.json",
    "vocab.txt",
    "spiece.model",
    "tiktoken.model",
    "qwen.tiktoken",
)
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
UNFINISHED_SUFFIXES = (".incomplete", ".cai-partial", ".downloading", ".part")
UNFINISHED_DIRS = ("._____temp",)  # ModelScope's download staging folder
LOOK_DOWN_MAX = 12
SAFETENSORS_HEADER_MAX = 100 << 20


@dataclass
class ModelDirReport:
    path: str
    has_config: bool = False
    architecture: str = ""
    tokenizer_files: list[str] = field(default_factory=list)
    weight_files: list[str] = field(default_factory=list)
    index_files: list[str] = field(default_factory=list)
    missing_shards: list[str] = field(default_factory=list)
    truncated: list[str] = field(default_factory=list)
    nested: str | None = None
    file_count: int = 0
    total_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        parts = ["config.json" if self.has_config else "no config.json"]
        parts.append(", ".join(self.tokenizer_files) if self.tokenizer_files else "no tokenizer")
        parts.append(f"{len(self.weight_files)} weight file(s)")
        parts.append(f"{self.file_count} files, {human_bytes(self.total_bytes)}")
        arch = f" ({self.architecture})" if self.architecture else ""
        return f"{self.path}: {'; '.join(parts)}{arch}"


def _walk_files(root: str) -> list[tuple[str, int]]:
    """``(relative path, size)`` of every regular file (symlinks to files count with their target's size)."""
    out: list[tuple[str, int]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            try:
                st = os.stat(full)
            except OSError:
                continue  # dangling link
            if os.path.isfile(full):
                out.append((os.path.relpath(full, root).replace(os.sep, "/"), st.st_size))
    return out


def safetensors_expected_size(path: str) -> int | None:
    """The size a safetensors file must have according to its header, or None when the header is unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > SAFETENSORS_HEADER_MAX:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return None
    if not isinstance(header, dict):
        return None
    end = 0
    for key, info in header.items():
        if key == "__metadata__" or not isinstance(info, dict):
            continue
        offsets = info.get("data_offsets")
        if isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets):
            end = max(end, offsets[1])
    return 8 + n + end


def _find_nested(root: str) -> str | None:
    try:
        subdirs = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return None
    for name in subdirs[:LOOK_DOWN_MAX]:
        if os.path.isfile(os.path.join(root, name, "config.json")):
            return name
    return None


def _check_config(report: ModelDirReport, root: str) -> None:
    try:
        with open(os.path.join(root, "config.json"), "rb") as f:
            config = json.loads(f.read(1 << 20))
    except (OSError, ValueError) as exc:
        report.problems.append(f"config.json does not parse ({exc}); download the model again")
        return
    if isinstance(config, dict):
        arch = config.get("architectures") or [config.get("model_type", "")]
        report.architecture = ", ".join(str(a) for a in arch if a)


def _check_indexes(report: ModelDirReport, root: str, names: set[str]) -> None:
    for index in report.index_files:
        try:
            with open(os.path.join(root, index), "rb") as f:
                doc = json.load(f)
            shards = sorted({str(v) for v in (doc.get("weight_map") or {}).values()})
        except (OSError, ValueError, AttributeError) as exc:
            report.problems.append(f"{index} does not parse ({exc})")
            continue
        base = os.path.dirname(index)
        absent = [s for s in shards if (f"{base}/{s}" if base else s) not in names]
        report.missing_shards += absent
        if absent:
            shown = ", ".join(absent[:4]) + (f", … ({len(absent)} in all)" if len(absent) > 4 else "")
            report.problems.append(
                f"{len(absent)} weight shard(s) named by {index} are missing: {shown}; the download did not finish"
            )


def validate_model_dir(path: str | os.PathLike[str]) -> ModelDirReport:
    root = os.path.abspath(os.path.expanduser(os.fspath(path)))
    report = ModelDirReport(path=root)
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.lexists(root) else "is not a directory"
        report.problems.append(f"{root} {what}")
        return report
    files = _walk_files(root)
    names = {rel for rel, _ in files}
    report.file_count = len(files)
    report.total_bytes = sum(size for _, size in files)
    top = {rel for rel in names if "/" not in rel}
    report.has_config = "config.json" in top
    report.tokenizer_files = [n for n in TOKENIZER_FILES if n in top]
    report.weight_files = sorted(
        rel for rel in names if rel.endswith(WEIGHT_SUFFIXES) and not os.path.basename(rel).startswith("training_args")
    )
    report.index_files = sorted(rel for rel in names if rel.endswith(".index.json"))
    if not report.has_config:
        report.nested = _find_nested(root)
        if report.nested is not None:
            report.problems.append(
                f"config.json is one level down, in {report.nested}/: the model sits in a sub-folder; "
                f"use {os.path.join(root, report.nested)} as the model directory"
            )
        else:
            report.problems.append(f"{root} has no config.json: not a model directory (give the folder that holds it)")
        return report
    _check_config(report, root)
    if not report.tokenizer_files:
        report.problems.append(f"no tokenizer file ({', '.join(TOKENIZER_FILES[:4])}, …); download the model again")
    if not report.weight_files:
        report.problems.append("no weight files (*.safetensors, *.bin, …); download the model again")
    _check_indexes(report, root, names)
    sizes = dict(files)
    for rel in report.weight_files:
        if rel.endswith(".safetensors"):
            expected = safetensors_expected_size(os.path.join(root, rel))
            if expected is None:
                report.truncated.append(rel)
                report.problems.append(f"{rel}: not a readable safetensors file (bad header)")
            elif sizes[rel] < expected:
                report.truncated.append(rel)
                report.problems.append(f"{rel}: truncated ({sizes[rel]} of {expected} bytes); download it again")
    unfinished = sorted(rel for rel in names if rel.endswith(UNFINISHED_SUFFIXES))
    unfinished += sorted(d for d in UNFINISHED_DIRS if os.path.isdir(os.path.join(root, d)))
    if unfinished:
        report.warnings.append(f"leftovers of an unfinished download or copy: {', '.join(unfinished[:4])}")
    return report
