"""Actions: the doers of documented steps. Each module imports its heavy dependencies lazily.

* :mod:`.model_dir` — validate a plaintext model directory (CAI-1.1);
* :mod:`.model_download` — download a model through ModelScope (CAI-1.1);
* :mod:`.model_encrypt` — encrypt with gocryptfs, natively or through the FUSE mount the seed uses (CAI-1.5);
* :mod:`.model_manifest` — the SHA-256 manifest written into the encrypted tree, and its verification;
* :mod:`.model_sam` — drive the Sam SDK's ``do_content_packager.sh`` (CAI-1.6).
"""


class ActionError(Exception):
    """A failure with a message meant for the user and the exit code the CLI ends with (2: input, 1: run)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def human_bytes(n: float) -> str:
    """``1536`` → ``1.5 KiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def human_rate(n_bytes: float, seconds: float) -> str:
    """The average rate of ``n_bytes`` moved in ``seconds``, in the unit that shows it: ``331477, 0.8`` →
    ``404.6 KiB/s`` (never a ``0 MB/s`` for a small, quick transfer); ``?`` without a duration."""
    if seconds <= 0:
        return "? B/s"
    return f"{human_bytes(n_bytes / seconds)}/s"
