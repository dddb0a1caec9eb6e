"""What an upload reports: its counts and the objects that failed verification."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Mismatch:
    key: str
    problem: str

    def __str__(self) -> str:
        return f"{self.key}: {self.problem}"


@dataclass
class UploadReport:
    bucket: str
    prefix: str
    source: str
    encrypted: bool
    files: int
    objects: int
    bytes_total: int
    bytes_uploaded: int = 0
    skipped: int = 0  # objects already uploaded by an earlier run
    resumed: bool = False  # an earlier run of this upload existed
    seconds: float = 0.0
    problems: list[Mismatch] = field(default_factory=list)
    extras: list[str] = field(default_factory=list)  # objects under the prefix that are not part of this upload
    state_dir: Path | None = None
    marker_key: str = ""

    @property
    def ok(self) -> bool:
        return not self.problems
