"""Limits, defaults and names of an upload; the options and the error for bad input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
MARKER_NAME = ".cai-upload-incomplete"
"""Object written first under the prefix and deleted after verification: an upload in progress or unfinished."""
MIN_PART_SIZE = 10 * MiB
DEFAULT_PART_SIZE = 10 * MiB
DEFAULT_THREADS = 4
MAX_THREADS = 64
MAX_PARTS = 10_000
JOURNAL_NAME = "journal.jsonl"
LOCK_NAME = ".lock"
JOURNAL_VERSION = 1
MANIFEST_NAME = ".cai-manifest.json"

SOURCE = "upload"


class UploadInputError(ValueError):
    """Bad input (the directory, the options, the password): nothing was uploaded. Exit code 2."""


@dataclass
class UploadOptions:
    threads: int = DEFAULT_THREADS
    part_size: int = DEFAULT_PART_SIZE
    password: str | bytes | None = None  # set: encrypt with gocryptfs on the way
    scrypt_logn: int = 16  # gocryptfs default; lower only in tests
    state_root: Path | None = None
    verify: bool = True
    progress_interval: float = 0.1  # seconds between progress events (0: every update)

    def check(self) -> None:
        if not 1 <= self.threads <= MAX_THREADS:
            raise UploadInputError(f"--threads must be between 1 and {MAX_THREADS}, not {self.threads}")
        if self.part_size < MIN_PART_SIZE:
            raise UploadInputError(f"the part size must be at least {MIN_PART_SIZE // MiB} MiB")
        if self.password is not None and not self.password:
            raise UploadInputError("the gocryptfs password is empty")
