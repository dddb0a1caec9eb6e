"""``cai-tui model …``: download, encrypt and verify a model (CAI step 1).

Exit codes: 0 success, 1 a failed run or verification (each bad file named), 2 input errors, 130 interrupted.
Passwords come from ``--password-file`` (first line, as ``gocryptfs -passfile``), never from the command line.
Heavy imports stay inside the command functions: ``cai-tui --help`` must stay fast.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import typer

model_app = typer.Typer(help="Download, encrypt and verify a model (CAI step 1).", no_args_is_help=True)

EXIT_INTERRUPTED = 130


def _say(message: str, *, err: bool = False) -> None:
    from ..recipe import REDACTOR

    stream = sys.stderr if err else sys.stdout
    stream.write(REDACTOR.redact(message).rstrip("\n") + "\n")
    stream.flush()


def _fail(exc: Any) -> typer.Exit:
    _say(f"error: {exc.message}", err=True)
    return typer.Exit(exc.exit_code)


def _view() -> Any:
    """The renderer of this command's events: lines and notes on stderr (stdout carries the results), a progress bar
    on a terminal, JSON lines on stdout for the stage engine."""
    from .events_view import EventsView

    return EventsView(out="stderr")


def _model_report(src: str) -> Any:
    from ..actions import ActionError
    from ..actions.model_dir import validate_model_dir

    report = validate_model_dir(src)
    for w in report.warnings:
        _say(f"warning: {w}", err=True)
    if not report.ok:
        raise ActionError("; ".join(report.problems), 2)
    _say(report.summary())
    return report


@model_app.command("download")
def download(
    model_id: str = typer.Argument(..., help="ModelScope ID (e.g. Qwen/Qwen2.5-3B-Instruct), or a local model dir."),
    dest: str | None = typer.Option(None, "--dest", help="Download into DIR (default: ModelScope's cache)."),
) -> None:
    """Download a model through ModelScope (CAI-1.1) and validate it; a local directory is validated instead."""
    from ..actions import ActionError
    from ..actions.model_download import download_model

    try:
        with _view() as view:

            def on_event(event: Any) -> None:
                if event.kind != "line":  # modelscope's own output (its bars, its tracebacks) stays out
                    view(event)

            result = download_model(model_id, dest, on_event=on_event)
    except ActionError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        _say("interrupted: the download is incomplete; run the same command again to resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    for w in result.report.warnings:
        _say(f"warning: {w}", err=True)
    if not result.report.ok:
        for p in result.report.problems:
            _say(f"problem: {p}", err=True)
        raise typer.Exit(1 if result.via != "local" else 2)
    _say(result.report.summary())
    _say(f"model directory: {result.path}  (next: cai-tui model encrypt {result.path} DST --password-file F)")


@model_app.command("encrypt")
def encrypt(
    src: str = typer.Argument(..., help="The plaintext model directory (the folder that holds config.json)."),
    dst: str = typer.Argument(..., help="The encrypted output directory (absent or empty)."),
    password_file: str = typer.Option(
        ..., "--password-file", help="File whose first line is the password/key (as gocryptfs -passfile)."
    ),
    engine: str = typer.Option("native", "--engine", help="gocryptfs engine: native (no FUSE) or fuse (the seed's)."),
    method: str = typer.Option("gocryptfs", "--method", help="gocryptfs or sam."),
    workers: int = typer.Option(0, "--workers", help="Native engine processes (default: one per core)."),
    mountpoint: str | None = typer.Option(None, "--mountpoint", help="FUSE engine: mount here (default: a temp dir)."),
    key_id: str | None = typer.Option(None, "--key-id", help="Sam: the key ID (8–48 bytes, e.g. LD_Demo_0001)."),
    sam_sdk: str | None = typer.Option(None, "--sam-sdk", help="Sam: the unpacked SDK folder (RAI_SAM_SDK_…)."),
) -> None:
    """Encrypt a model directory (CAI-1.5 gocryptfs, CAI-1.6 Sam); a SHA-256 manifest goes inside (gocryptfs).

    Ctrl-C (or SIGTERM) stops it: the output stays marked unfinished and the same command starts over."""
    from ..actions import ActionError
    from ..events import Cancelled

    try:
        if method not in ("gocryptfs", "sam"):
            raise ActionError(f"--method {method!r}: use gocryptfs or sam")
        if engine not in ("native", "fuse"):
            raise ActionError(f"--engine {engine!r}: use native or fuse")
        if method == "sam":
            _encrypt_sam(src, dst, password_file, key_id, sam_sdk)
        else:
            _encrypt_gocryptfs(src, dst, password_file, engine, workers, mountpoint)
    except ActionError as exc:
        raise _fail(exc) from None
    except (KeyboardInterrupt, Cancelled):
        if method == "sam":
            _say(f"interrupted: {dst} is incomplete; delete it before retrying", err=True)
        else:
            _say(
                f"interrupted: {dst} is left incomplete (marked CAI-INCOMPLETE, no gocryptfs.conf); run the same "
                "command again to start over (it clears the unfinished output first)",
                err=True,
            )
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _encrypt_gocryptfs(src: str, dst: str, password_file: str, engine: str, workers: int, mnt: str | None) -> None:
    from ..actions import human_bytes
    from ..actions.model_encrypt import encrypt_fuse, encrypt_native, read_password_file
    from ..events import CancelToken
    from .events_view import cancel_on_signals

    password, warnings = read_password_file(password_file)
    for w in warnings:
        _say(f"warning: {w}", err=True)
    _model_report(src)
    n = workers or os.cpu_count() or 1
    with _view() as view, cancel_on_signals(CancelToken()) as token:
        if engine == "native":
            result = encrypt_native(src, dst, password, workers=n, on_event=view, cancel=token)
        else:
            result = encrypt_fuse(src, dst, password_file, mountpoint=mnt, on_event=view, cancel=token)
    how = f"native engine, {n} process(es)" if engine == "native" else f"FUSE engine, {result.gocryptfs_version}"
    _say(
        f"encrypted {result.src} → {result.dst} ({how}): {result.files} files, {human_bytes(result.plain_bytes)} in "
        f"{result.seconds:.1f} s ({result.rate}); .cai-manifest.json inside ({result.manifest_files} files)"
    )
    _say(
        "next: upload the folder's contents to OSS (CAI-1.7); store the password (the first line of "
        f"{password_file}) as the model key in KMS (CAI-2.6); check with `cai-tui model verify {dst} --password-file F`"
    )


def _encrypt_sam(src: str, dst: str, password_file: str, key_id: str | None, sdk: str | None) -> None:
    from ..actions import ActionError, human_bytes
    from ..actions.model_encrypt import read_password_file
    from ..actions.model_sam import SDK_NAME, key_id_problems, key_problems, run_packager

    key, _ = read_password_file(password_file)
    problems = key_problems(key) + ([] if key_id is None else key_id_problems(key_id))
    if key_id is None:
        problems.append("--key-id is required with --method sam (8–48 bytes, e.g. LD_Demo_0001)")
    if sdk is None:
        problems.append(f"--sam-sdk is required with --method sam: the unpacked {SDK_NAME} folder")
    if problems:
        raise ActionError("; ".join(problems))
    assert key_id is not None and sdk is not None
    _model_report(src)
    result = run_packager(sdk, src, key, key_id, dst, on_line=lambda line: _say(f"  | {line}", err=True))
    _say(f"Sam output ({result.files} files, {human_bytes(result.bytes)}) → {result.dst}")
    _say("next: upload it to OSS (CAI-1.7); store the key in KMS (CAI-2.6); MODEL_ENCRYPTION_METHOD=sam in cai.env")


@model_app.command("verify")
def verify(
    path: str = typer.Argument(..., help="A cipherdir, or with --plain a decrypted/mounted model (MODEL_MOUNT_POINT)."),
    password_file: str | None = typer.Option(None, "--password-file", help="Password file of the cipherdir."),
    plain: bool = typer.Option(False, "--plain", help="PATH is plaintext (e.g. /tmp/model inside the instance)."),
) -> None:
    """Check every file against the SHA-256 manifest inside the model; exit 1 naming each bad file."""
    from ..actions import ActionError, human_bytes
    from ..actions.model_encrypt import read_password_file
    from ..actions.model_manifest import verify_cipherdir, verify_plain
    from ..events import labelled

    try:
        with _view() as view:
            bar = labelled(view, source="verify")
            if plain:
                report = verify_plain(path, progress=bar)
            else:
                if password_file is None:
                    raise ActionError("--password-file is required to verify a cipherdir (or use --plain on plaintext)")
                password, _ = read_password_file(password_file)
                report = verify_cipherdir(path, password, progress=bar)
    except ActionError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        _say("interrupted: verification incomplete", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    for rel, why in report.bad:
        _say(f"BAD {rel}: {why}")
    checked = f"{report.checked} of {report.expected_files} files ({human_bytes(report.checked_bytes)}) checked"
    if report.bad:
        _say(f"verification FAILED: {len(report.bad)} problem(s); {checked}", err=True)
        raise typer.Exit(1)
    _say(f"ok: {checked}; all match .cai-manifest.json")


# ------------------------------------------------------------------------------------------------------------------
# upload, bucket-policy, use-public (CAI-1.7, CAI-4.1, CAI-1.0): their own helpers below, prefixed _up_.
def _up_recipe(path: str) -> Any:
    """The loaded cai recipe, or exit 2 with one line per problem."""
    from ..recipe import CaiRecipe, RecipeError, load_recipe

    try:
        loaded = load_recipe(path)
    except RecipeError as exc:
        for p in exc.problems:
            _say(str(p), err=True)
        raise typer.Exit(2) from None
    if not isinstance(loaded.recipe, CaiRecipe):
        _say(f"error: {path}: this command needs a cai recipe, not {loaded.recipe.flow!r}", err=True)
        raise typer.Exit(2)
    return loaded


def _up_error(exc: BaseException) -> typer.Exit:
    faq = getattr(exc, "faq_id", "")
    _say(f"error: {exc}" + (f"  [FAQ: {faq}]" if faq else ""), err=True)
    return typer.Exit(2)


def _up_password(password_file: str | None, loaded: Any) -> bytes:
    from ..actions import ActionError
    from ..actions.model_encrypt import read_password_file
    from ..recipe import SecretUnavailable, resolve_secret

    if password_file is not None:
        try:
            password, warnings = read_password_file(password_file)
        except ActionError as exc:
            raise _up_error(exc) from None
        for w in warnings:
            _say(f"warning: {w}", err=True)
        return password
    ref = loaded.recipe.answers.model.password
    if ref is None:
        _say("error: --encrypt needs --password-file F (or answers.model.password in the recipe)", err=True)
        raise typer.Exit(2)
    try:
        return resolve_secret(ref, field="answers.model.password", what="gocryptfs password").encode("utf-8")
    except SecretUnavailable as exc:
        raise _up_error(exc) from None


@model_app.command("upload")
def upload(
    src: str = typer.Argument(
        ..., help="The directory to upload: a cipherdir as it is, or a plaintext model with --encrypt."
    ),
    dest: str = typer.Argument(..., help="oss://BUCKET/PREFIX (e.g. oss://examplebucket/qwen-encrypted/)."),
    recipe: str = typer.Option(..., "--recipe", help="Recipe with the OSS endpoint and AccessKey (answers.oss)."),
    encrypt: bool = typer.Option(
        False, "--encrypt", help="Encrypt with gocryptfs file by file on the way: no ciphertext copy on disk."
    ),
    password_file: str | None = typer.Option(
        None, "--password-file", help="With --encrypt: the password (first line); default answers.model.password."
    ),
    threads: int = typer.Option(4, "--threads", help="Parts (and small files) uploaded in parallel."),
    part_size: int = typer.Option(10, "--part-size", help="Multipart part size in MiB (at least 10)."),
    auth_v1: bool = typer.Option(False, "--auth-v1", help="Sign with OSS V1 signatures instead of V4."),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds to wait for OSS on connect and on each read."),
) -> None:
    """Upload a model directory to OSS (CAI-1.7): multipart, parallel, resumable, verified by size and CRC-64.

    An interrupted upload (Ctrl-C, SIGTERM, a lost connection) resumes when the same command runs again: on Ctrl-C
    the requests in flight get a moment to finish and be recorded. The marker object PREFIX.cai-upload-incomplete
    stays until every object is verified. Shortcut without uploading: `cai-tui model use-public` (CAI-1.0).
    Exit codes: 0 uploaded and verified, 1 verification failed, 2 bad input or an OSS error, 130 interrupted.
    """
    from ..actions import human_bytes, human_rate
    from ..actions.model_upload import (
        MiB,
        UploadInputError,
        UploadOptions,
        run_id,
        state_root,
        upload_tree,
    )
    from ..clients.oss import OssActionError, OssInputError, bucket_from_recipe, parse_oss_url
    from ..events import Cancelled

    loaded = _up_recipe(recipe)
    answers = loaded.recipe.answers
    try:
        bucket_name, prefix = parse_oss_url(dest)
        password = _up_password(password_file, loaded) if encrypt else None
        if password_file is not None and not encrypt:
            raise OssInputError("--password-file is only used with --encrypt")
        options = UploadOptions(threads=threads, part_size=part_size * MiB, password=password)
        options.check()
        bucket = bucket_from_recipe(
            answers, bucket_name, timeout=timeout, auth_version="v1" if auth_v1 else "v4", pool_size=threads * 2
        )
    except (OssInputError, UploadInputError) as exc:
        raise _up_error(exc) from None
    state = state_root() / run_id(bucket_name, prefix, os.path.abspath(src))
    where = f"oss://{bucket_name}/{prefix}"
    try:
        with _view() as view:
            report = _up_run(
                lambda token: upload_tree(bucket, src, prefix, options=options, on_event=view, cancel=token)
            )
    except (OssActionError, UploadInputError) as exc:
        raise _up_error(exc) from None
    except (KeyboardInterrupt, Cancelled):
        _say(
            f"interrupted: the upload to {where} is not finished (the marker {prefix}.cai-upload-incomplete stays). "
            f"Run the same command again to resume; its state is in {state}",
            err=True,
        )
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(EXIT_INTERRUPTED)  # do not wait for requests still in flight past the grace: the state is on disk
    mode = "encrypted with gocryptfs on the way" if report.encrypted else "as is"
    rate = human_rate(report.bytes_uploaded, report.seconds)
    _say(
        f"{where}: {report.files} file(s), {report.objects} object(s), {human_bytes(report.bytes_total)} ({mode}); "
        f"uploaded {human_bytes(report.bytes_uploaded)} in {report.seconds:.1f} s ({rate})"
        + (f", {report.skipped} already there from an earlier run" if report.skipped else "")
    )
    for key in report.extras[:10]:
        _say(f"warning: {key} is under the prefix but not part of this upload", err=True)
    if len(report.extras) > 10:
        _say(f"warning: and {len(report.extras) - 10} more objects that are not part of this upload", err=True)
    if report.extras and report.encrypted:
        _say("warning: objects that are not part of the cipherdir make gocryptfs report errors; delete them", err=True)
    if not report.ok:
        for m in report.problems[:20]:
            _say(f"BAD {m}")
        _say(
            f"verification FAILED: {len(report.problems)} object(s) missing or different; the marker "
            f"{report.marker_key} stays. Run the same command again to upload them again.",
            err=True,
        )
        raise typer.Exit(1)
    _say(f"verified: every object's size and CRC-64 match; the marker {report.marker_key} is removed")
    configured = str(answers.oss.bucket_path)
    if configured.rstrip("/") != f"{bucket_name}:/{prefix}".rstrip("/"):
        _say(
            f"note: the recipe's answers.oss.bucket_path is {configured}; set it to {bucket_name}:/{prefix} to use this upload"
        )
    _say(f"next: grant the instance read access (CAI-4.1): cai-tui model bucket-policy --recipe {recipe}")


UPLOAD_GRACE_S = 2.0
"""After Ctrl-C, how long the upload's requests in flight may take to finish and be journalled."""


def _up_run(work: Callable[[Any], Any]) -> Any:
    """Run ``work(token)`` in a thread; the first Ctrl-C/SIGTERM cancels the token (no new request starts) and
    waits up to :data:`UPLOAD_GRACE_S` for it to stop, then raises Cancelled anyway; a second one raises at once."""
    from ..events import Cancelled, CancelToken
    from .events_view import cancel_on_signals

    box: dict[str, Any] = {}

    def run(token: CancelToken) -> None:
        try:
            box["result"] = work(token)
        except BaseException as exc:
            box["error"] = exc

    with cancel_on_signals(CancelToken()) as token:
        thread = threading.Thread(target=run, args=(token,), name="cai-upload", daemon=True)
        thread.start()
        cancelled_at: float | None = None
        while thread.is_alive():
            thread.join(0.1)
            if token.cancelled:
                cancelled_at = cancelled_at or time.monotonic()
                if time.monotonic() - cancelled_at > UPLOAD_GRACE_S:
                    raise Cancelled(token.reason)
    if "error" in box:
        raise box["error"]
    return box["result"]


@model_app.command("bucket-policy")
def bucket_policy(
    recipe: str = typer.Option(..., "--recipe", help="Recipe with the bucket (answers.oss) and the instance IP."),
    ip: list[str] = typer.Option(
        [], "--ip", help="Source IP or CIDR to grant (repeatable); default answers.instance.public_ip."
    ),
    vpc: list[str] = typer.Option([], "--vpc", help="VPC ID to grant (repeatable), for reads from inside a VPC."),
    uid: str | None = typer.Option(
        None, "--uid", help="Account UID of the bucket owner; default answers.oss.account_uid."
    ),
    bucket_name: str | None = typer.Option(
        None, "--bucket", help="Bucket; default the one in answers.oss.bucket_path."
    ),
    merge: bool = typer.Option(False, "--merge", help="Keep the current statements and add the generated ones."),
    apply: bool = typer.Option(False, "--apply", help="Apply the policy (after the preview)."),
    yes: bool = typer.Option(False, "--yes", help="With --apply: do not ask for confirmation (headless runs)."),
    auth_v1: bool = typer.Option(False, "--auth-v1", help="Sign with OSS V1 signatures instead of V4."),
) -> None:
    """Generate the bucket policy granting the instance's IP read access (CAI-4.1); preview the diff, --apply it.

    Exit codes: 0 shown or applied (or already in place), 2 bad input, an OSS error, or not confirmed.
    """
    from ..actions.bucket_policy import apply_policy, preview_policy, render_bucket_policy
    from ..clients.oss import OssActionError, OssInputError, bucket_from_recipe
    from ..recipe.types import parse_bucket_path

    loaded = _up_recipe(recipe)
    answers = loaded.recipe.answers
    try:
        name = bucket_name or parse_bucket_path(str(answers.oss.bucket_path))[0]
        ips = list(ip) or ([str(answers.instance.public_ip)] if answers.instance.public_ip else [])
        proposed = render_bucket_policy(name, uid or answers.oss.account_uid or "", ips, vpc)
        bucket = bucket_from_recipe(answers, name, timeout=20, auth_version="v1" if auth_v1 else "v4")
    except OssInputError as exc:
        raise _up_error(exc) from None
    try:
        preview = preview_policy(bucket, proposed, merge=merge)
    except OssActionError as exc:
        _say(proposed)
        _say("(the current policy could not be read, so there is no diff; the generated policy is above)", err=True)
        raise _up_error(exc) from None
    if preview.unchanged:
        _say(f"bucket {name} already has exactly this policy; nothing to do")
        return
    _say(preview.diff)
    if preview.removed_statements:
        _say(
            f"warning: {preview.removed_statements} statement(s) of the current policy would be removed "
            "(--merge keeps them)",
            err=True,
        )
    if not apply:
        _say(f"not applied (preview only); run again with --apply to put it on bucket {name}")
        return
    if not yes:
        if not sys.stdin.isatty():
            _say("error: --apply needs confirmation: add --yes for a headless run", err=True)
            raise typer.Exit(2)
        if not typer.confirm(f"Replace the policy of bucket {name} with the one above?", default=False):
            _say("not applied", err=True)
            raise typer.Exit(2)
    try:
        apply_policy(bucket, preview.proposed)
    except OssActionError as exc:
        raise _up_error(exc) from None
    _say(f"applied: bucket {name} now grants {', '.join(ips + list(vpc))} read access (oss:GetObject, oss:ListObjects)")


@model_app.command("use-public")
def use_public(
    recipe: str = typer.Option(..., "--recipe", help="The cai recipe to point at the public model."),
    method: str = typer.Option("gocryptfs", "--method", help="gocryptfs or sam."),
    write: bool = typer.Option(
        False, "--write", help="Save the recipe (comments kept); without it, only show changes."
    ),
    password_file: str | None = typer.Option(
        None,
        "--password-file",
        help="With --write: write the public password to this file (mode 0600) and reference it from the recipe.",
    ),
) -> None:
    """Use the seed's public pre-encrypted Qwen2.5-3B-Instruct instead of uploading a model (CAI-1.0)."""
    from ..actions import public_model
    from ..recipe import RecipeError, save_recipe

    if method not in ("gocryptfs", "sam"):
        _say(f"error: --method {method!r}: use gocryptfs or sam", err=True)
        raise typer.Exit(2)
    loaded = _up_recipe(recipe)
    ref = None
    if write:
        target = password_file
        if target is None and sys.stdin.isatty():
            default = str(public_model.default_password_path())
            if typer.confirm(f"Write the public password to {default} (mode 0600) and refer to it?", default=True):
                target = default
        if target is not None:
            try:
                ref = public_model.write_password_file(target)
            except (OSError, FileExistsError) as exc:
                _say(f"error: {exc}", err=True)
                raise typer.Exit(2) from None
            _say(f"wrote the public password to {ref[len('file:') :]} (mode 0600)")
    try:
        changes = public_model.use_public(loaded, method, password_ref=ref)  # type: ignore[arg-type]
    except ValueError as exc:
        _say(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for change in changes:
        _say(f"  {change}")
    if not changes:
        _say(f"{recipe} already points at the public model")
    elif write:
        try:
            save_recipe(loaded, recipe)
        except RecipeError as exc:
            for p in exc.problems:
                _say(str(p), err=True)
            raise typer.Exit(2) from None
        _say(f"saved {recipe} (comments kept; the previous version is {recipe}.bak)")
    else:
        _say("not saved (preview only); run again with --write to save the recipe")
    _say(public_model.explanation(method, ref))  # type: ignore[arg-type]
