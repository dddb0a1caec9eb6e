"""``cai-tui kms create-secret``: the KMS secret holding the model key (CAI-2.6), created through the KMS API.

Shows the plan (name, instance, region, KBS URI, the value as its reference), asks (or needs ``--yes`` without a
terminal), creates it, and reads it back ("verified"). The value is never printed, not even with ``--json``.
Exit codes: 0 created / updated / already right (or a dry run), 1 the secret exists (without ``--update``), the
creation was declined, or the read-back differs; 2 bad input, no confirmation in a headless run, or a KMS error
(one line with the FAQ id). Heavy imports (the KMS SDK, the recipe models) stay inside the functions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from .common import hidden_prompter

kms_app = typer.Typer(help="The KMS secret holding the model key (CAI-2.6).", no_args_is_help=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


@kms_app.command("create-secret")
def create_secret_command(
    recipe: Path = typer.Option(..., "--recipe", help="The cai recipe (answers.kms, answers.model, MODEL_KEY_ID)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask before creating (needed without a terminal)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Show the plan (and whether the secret exists); change nothing."
    ),
    encryption_key_id: str | None = typer.Option(
        None, "--encryption-key-id", help="ID of the customer master key to encrypt it with (default: the instance's)."
    ),
    update: bool = typer.Option(
        False, "--update", help="If it exists, store the key as a new version (PutSecretValue; the old one is kept)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document (never the value) on stdout."),
) -> None:
    """Create the generic secret Trustee reads the model key from (CAI-2.6), then verify it by reading it back."""
    raise typer.Exit(
        run_create_secret(
            recipe=recipe,
            yes=yes,
            dry_run=dry_run,
            encryption_key_id=encryption_key_id,
            update=update,
            as_json=as_json,
        )
    )


class _Out:
    """Human lines (stdout, or stderr with --json) and the JSON document; everything passes the redactor."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.doc: dict[str, Any] = {}

    @staticmethod
    def _write(stream: Any, text: str) -> None:
        from ..recipe import REDACTOR

        stream.write(REDACTOR.redact(text).rstrip("\n") + "\n")
        stream.flush()

    def say(self, text: str) -> None:
        self._write(sys.stderr if self.as_json else sys.stdout, text)

    def err(self, text: str) -> None:
        self._write(sys.stderr, text)

    def finish(self, code: int, result: str, error: Any = None) -> int:
        if self.as_json:
            self.doc["result"] = result
            self.doc["exit_code"] = code
            if error is not None:
                self.doc["error"] = {
                    "message": error if isinstance(error, str) else getattr(error, "message", str(error)),
                    "faq_id": getattr(error, "faq_id", "") or None,
                    "code": getattr(error, "code", "") or None,
                }
            self._write(sys.stdout, json.dumps(self.doc, ensure_ascii=False, indent=2))
        return code


def run_create_secret(
    *,
    recipe: Path,
    yes: bool = False,
    dry_run: bool = False,
    encryption_key_id: str | None = None,
    update: bool = False,
    as_json: bool = False,
) -> int:
    from ..actions.kms_secret import (
        KmsActionError,
        SecretExists,
        Session,
        create_or_update,
        endpoint_of,
        exists_error,
        make_client,
        resolve_value,
    )
    from ..recipe import CaiRecipe, RecipeError, load_recipe
    from ..render import RenderError
    from ..render.base import placeholder
    from ..render.kms_secret import plan

    out = _Out(as_json)
    try:
        loaded = load_recipe(recipe)
    except RecipeError as e:
        for problem in e.problems:
            out.err(str(problem))
        return out.finish(EXIT_USAGE, "error", "; ".join(str(problem) for problem in e.problems) or str(e))
    r = loaded.recipe
    if not isinstance(r, CaiRecipe):
        msg = f"error: {recipe}: kms create-secret needs a cai recipe, not {r.flow!r}"
        out.err(msg)
        return out.finish(EXIT_USAGE, "error", msg)
    try:
        p = plan(r)
    except RenderError as e:
        out.err(f"error: {recipe}: {e}")
        return out.finish(EXIT_USAGE, "error", str(e))
    endpoint = endpoint_of(r)[0]
    key = encryption_key_id or None
    out.doc.update(
        secret_name=p.name,
        kms_instance_id=p.instance_id,
        region=p.region,
        endpoint=endpoint,
        kbs_uri=p.kbs_uri,
        value_ref=str(p.value_ref),
        value_field=f"answers.{p.value_field}",
        encryption_key_id=key,
        update=update,
        dry_run=dry_run,
    )
    out.say("KMS secret for the model key (CAI-2.6), through the KMS API:")
    out.say(f"  name:           {p.name}")
    out.say(f"  KMS instance:   {p.instance_id or '(the region default: answers.kms.instance_id unset)'}")
    out.say(f"  region:         {p.region}   endpoint {endpoint}")
    out.say(f"  value:          {placeholder(p.value_ref)}  (answers.{p.value_field}; the value is never shown)")
    out.say(f"  encryption key: {key or 'the default key of the KMS instance'}")
    out.say(f"  Trustee serves: {p.kbs_uri}  (MODEL_KEY_ID)")

    def failed(exc: KmsActionError) -> int:
        out.err(f"error: {exc}")
        return out.finish(exc.exit_code, "exists" if isinstance(exc, SecretExists) else "error", exc)

    prompt = hidden_prompter()
    have_keys = r.answers.kms.access_key_id is not None and r.answers.kms.access_key_secret is not None
    if dry_run and not have_keys:
        out.say("dry run: nothing created or changed (no answers.kms.access_key_id/_secret, so KMS was not asked)")
        return out.finish(EXIT_OK, "planned")
    try:
        session = Session(r, make_client(r, prompt=prompt))
        exists = session.exists()
    except KmsActionError as exc:
        return failed(exc)
    out.doc["exists"] = exists
    if dry_run and exists and not update:
        out.say(f"dry run: nothing created or changed; the secret {p.name!r} exists, so a run needs --update")
        return out.finish(EXIT_OK, "planned")
    if exists and not update:
        return failed(exists_error(p.name))
    what = (
        f"add a new version to the existing secret {p.name!r} (PutSecretValue; the current one is kept)"
        if exists
        else f"create the secret {p.name!r}"
    )
    if dry_run:
        out.say(f"dry run: nothing created or changed; a run would {what}")
        return out.finish(EXIT_OK, "planned")
    if not yes:
        if not sys.stdin.isatty():
            out.err("error: not creating the KMS secret without confirmation: run in a terminal or add --yes")
            return out.finish(EXIT_USAGE, "not-confirmed")
        if not typer.confirm(f"{what[0].upper()}{what[1:]}?", default=False, err=as_json):
            out.err("not created")
            return out.finish(EXIT_FAILED, "declined")
    try:
        value = resolve_value(r, prompt=prompt)
        outcome = create_or_update(session, value, update=update, encryption_key_id=key, exists=exists)
    except KmsActionError as exc:
        return failed(exc)
    out.doc.update(version_id=outcome.version_id, verified=outcome.verified)
    done = {
        "created": f"created the KMS secret {p.name!r} (version {outcome.version_id})",
        "updated": f"stored a new version {outcome.version_id} of {p.name!r}; the previous one is kept as ACSPrevious",
        "unchanged": f"the KMS secret {p.name!r} already holds this key (version {outcome.version_id}); no new version",
    }[outcome.result]
    out.say(done)
    out.say(f"verified: GetSecretValue of {p.name!r} returns the key of answers.{p.value_field} (value not shown)")
    out.say(f"next: Trustee serves it as {p.kbs_uri}; check with `cai-tui doctor --recipe {recipe}`")
    return out.finish(EXIT_OK, outcome.result)
