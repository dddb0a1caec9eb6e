"""The entry point: :func:`upload_tree` checks the input, takes the run's lock and runs it."""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Any

from ...events import NEVER, CancelToken, EventSink
from .journal import run_id, state_root
from .options import LOCK_NAME, UploadInputError, UploadOptions
from .report import UploadReport
from .run import _Run
from .tree import LocalTree, scan_tree


def upload_tree(
    bucket: Any,
    src_dir: str | os.PathLike[str],
    prefix: str,
    *,
    options: UploadOptions | None = None,
    on_event: EventSink | None = None,
    cancel: CancelToken = NEVER,
) -> UploadReport:
    """Upload (and verify) ``src_dir`` to ``prefix`` of ``bucket`` (an :class:`oss2.Bucket`); see the module docstring.

    Raises :class:`UploadInputError` (nothing or nothing more uploaded; fix the input) and
    :class:`~cai_tui.clients.oss.OssActionError` (OSS refused or was unreachable; re-run to resume) and
    :class:`~cai_tui.events.Cancelled` (``cancel`` was set; re-run to resume). A report with problems means
    verification failed.
    """
    opt = options or UploadOptions()
    opt.check()
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    tree = scan_tree(src_dir)
    if opt.password is None:
        _refuse_unfinished_cipherdir(tree)
    root = opt.state_root or state_root()
    state_dir = root / run_id(bucket.bucket_name, prefix, tree.root)
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with _exclusive(state_dir, bucket.bucket_name, prefix):
        run = _Run(bucket, tree, prefix, opt, on_event, state_dir, cancel)
        try:
            return run.run()
        finally:
            run.journal.close()


def _refuse_unfinished_cipherdir(tree: LocalTree) -> None:
    """An interrupted ``cai-tui model encrypt`` output (its marker, or directory IVs without gocryptfs.conf) is not a
    model: uploading it would put an unusable cipherdir in OSS."""
    top = {f.rel for f in tree.files if "/" not in f.rel}
    if "CAI-INCOMPLETE" in top:
        raise UploadInputError(
            f"{tree.root} is an unfinished encryption (CAI-INCOMPLETE marker): delete it and run "
            "`cai-tui model encrypt` again, or upload the plaintext with --encrypt"
        )
    if "gocryptfs.diriv" in top and "gocryptfs.conf" not in top:
        raise UploadInputError(
            f"{tree.root} has gocryptfs.diriv but no gocryptfs.conf: an incomplete cipherdir (or a sub-folder of "
            "one); upload the whole cipher directory"
        )


@contextlib.contextmanager
def _exclusive(state_dir: Path, bucket: str, prefix: str) -> Any:
    fd = os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise UploadInputError(
                f"another upload of this directory to oss://{bucket}/{prefix} is running (state {state_dir}); "
                "wait for it to finish"
            ) from None
        yield
    finally:
        os.close(fd)
