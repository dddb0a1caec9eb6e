"""Helpers for the check tests: lab recipe variants, running checks with the real runner, and a secret scan."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cai_tui.checks.base import CheckContext
from cai_tui.checks.registry import all_checks
from cai_tui.checks.runner import CheckOutcome, run_checks
from cai_tui.recipe import load_recipe
from cai_tui.recipe.model import CaiRecipe
from cai_tui.recipe.redaction import Redactor
from cai_tui.targets.local import LocalTarget

OUR_CHECKS = (
    "trustee.url",
    "trustee.auth_nonce",
    "trustee.as_reachable",
    "trustee.gateway_health",
    "trustee.resource",
    "oss.endpoint",
    "oss.credentials",
    "oss.bucket",
    "oss.model_prefix",
    "oss.bucket_policy",
    "kms.secret_exists",
    "kms.secret_matches",
    "kms.client_key_files",
    "model.local_dir",
    "model.encrypted",
    "model.mounted",
    "disk.capacity",
)


def write_recipe(lab: Any, path: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """The lab's recipe, changed by ``edit(doc)`` (a plain dict), written to ``path``."""
    from ruamel.yaml import YAML

    yaml = YAML(typ="rt")
    doc = yaml.load(Path(lab.recipe_path).read_text("utf-8"))
    if edit is not None:
        edit(doc)
    with path.open("w", encoding="utf-8") as f:
        yaml.dump(doc, f)
    return path


def lab_recipe(lab: Any, tmp_path: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> CaiRecipe:
    path = write_recipe(lab, tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*.yaml')))}.yaml", edit)
    recipe = load_recipe(path).recipe
    assert isinstance(recipe, CaiRecipe)
    return recipe


def secret_file(tmp_path: Path, name: str, value: str) -> str:
    p = tmp_path / name
    p.write_text(value, encoding="utf-8")
    p.chmod(0o600)
    return f"file:{p}"


def run(
    recipe: CaiRecipe | None,
    only: Iterable[str] | None = None,
    *,
    timeout: float = 3.0,
    targets: dict[str, Any] | None = None,
    redactor: Redactor | None = None,
) -> dict[str, CheckOutcome]:
    """Run our checks (or those matching ``only`` and what they depend on) with the real runner."""
    local = LocalTarget()
    ctx = CheckContext(
        recipe=recipe,
        targets=targets if targets is not None else {"workstation": local, "instance": local},
        redactor=redactor if redactor is not None else Redactor(),
        timeout=timeout,
    )
    specs = [s for cid, s in all_checks().items() if cid in OUR_CHECKS]
    outcomes = asyncio.run(run_checks(specs, ctx, only=list(only) if only else None, timeout=timeout))
    return {o.id: o for o in outcomes}


def status(outcomes: dict[str, CheckOutcome]) -> dict[str, str]:
    return {cid: o.result.status for cid, o in outcomes.items()}


def faq(outcome: CheckOutcome) -> str | None:
    return outcome.result.fix.faq_id if outcome.result.fix else None


def describe(outcomes: dict[str, CheckOutcome]) -> str:
    return "\n".join(f"{o.result.status:7} {cid}: {o.result.summary} [{faq(o)}]" for cid, o in outcomes.items())


def outcome_text(outcomes: dict[str, CheckOutcome]) -> str:
    """Everything the outcomes say, as one string (for secret scans)."""
    return json.dumps(
        [{"id": cid, "target": o.target_name, **dataclasses.asdict(o.result)} for cid, o in outcomes.items()],
        default=str,
    )


def lab_secrets(lab: Any) -> list[str]:
    k = lab.keys
    values = [
        k.oss_access_key_id,
        k.oss_access_key_secret,
        k.oss_sts_access_key_id,
        k.oss_sts_access_key_secret,
        k.oss_sts_token,
        k.kms_access_key_id,
        k.kms_access_key_secret,
        lab.demo.password,
        k.admin_private_pem.decode("ascii").split("\n")[1],  # the key's base64 line
    ]
    return [v for v in values if v]


def assert_no_secrets(text: str, secrets: Iterable[str]) -> None:
    leaked = [s[:4] + "…" for s in secrets if s in text]
    assert not leaked, f"secret values leaked into the output: {leaked}"


def expect(outcomes: dict[str, CheckOutcome], check_id: str, want_status: str, want_faq: str | None = None) -> Any:
    o = outcomes[check_id]
    assert o.result.status == want_status, describe(outcomes)
    if want_faq is not None:
        assert faq(o) == want_faq, describe(outcomes)
    if want_status in ("fail", "warn"):
        assert o.result.fix is not None and o.result.fix.text, f"{check_id}: a {want_status} needs a fix"
        assert o.result.evidence, f"{check_id}: a {want_status} needs evidence"
    return o.result
