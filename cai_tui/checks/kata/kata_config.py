"""kata.config: the kata configuration file in effect and its guest_hook_path."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from ...parsers.errors import ParseError
from ...targets.base import Target
from ..base import CheckContext, Result
from ..common import ev, make
from ..registry import check
from ._common import FLOW, _can_run, _host, _read_text, _run, kata_answers

# --------------------------------------------------------------------------------------------- kata.config


def _lines_with(text: str, key: str) -> list[str]:
    """``line N: …`` for each line that sets ``key``, commented out or not."""
    pattern = re.compile(rf"^\s*#?\s*{re.escape(key)}\s*=")
    return [f"line {n}: {ln.strip()}" for n, ln in enumerate(text.splitlines(), 1) if pattern.match(ln)]


async def _kata_conf_env(ctx: CheckContext, t: Target) -> tuple[str | None, str]:
    """KATA_CONF_FILE as the host's environment has it (None: unset, or a sysroot with no environment)."""
    r = await _run(ctx, t, ["printenv", "KATA_CONF_FILE"])
    if r is None:
        return None, "no environment on a sysroot"
    value = r.stdout.strip() if r.ok else ""
    return value or None, "printenv KATA_CONF_FILE"


@check(
    "kata.config",
    "The kata configuration in effect sets guest_hook_path",
    stage="kata-config",
    flows=FLOW,
    runs_on="host",
)
async def kata_config(ctx: CheckContext) -> Result:
    from ...parsers.kata_toml import (
        ENV_OVERRIDE,
        SEARCH_ORDER,
        effective_config_path,
        key_lines,
        parse_kata_config,
        table_label,
    )

    t = _host(ctx)
    answers, origin = kata_answers(ctx)
    want = answers.kata.guest_hook_path.rstrip("/") or "/"
    recipe_file = answers.kata.config_path
    override, env_source = await _kata_conf_env(ctx, t)
    candidates = list(dict.fromkeys([*([override] if override else []), *SEARCH_ORDER, recipe_file]))
    present = await asyncio.gather(*(t.exists(p) for p in candidates))
    existing = [p for p, ok in zip(candidates, present, strict=True) if ok]
    env = {ENV_OVERRIDE: override} if override else {}
    path = effective_config_path(env, set(existing))  # only KATA_CONF_FILE or a path of the search order
    evidence = [
        ev(
            ctx,
            f"{ENV_OVERRIDE}={override}"
            if override
            else (f"{ENV_OVERRIDE} not set" if _can_run(t) else f"{ENV_OVERRIDE} unknown: the search order applies"),
            env_source,
            t.name,
        ),
        ev(ctx, ", ".join(existing) or "(none)", "existing of " + ", ".join(candidates), t.name),
    ]
    fix_set = (
        f'Under the [hypervisor.qemu] table of the file in effect, set `guest_hook_path = "{want}"` (uncomment the '
        "shipped line, or replace the empty value that kata 3.24 and later ship), so that kata's agent runs the "
        "hooks under <guest_hook_path>/prestart in the guest. "
        "`kata-runtime --show-default-config-paths` lists the files it looks at, in order."
    )
    if path is None:
        why = (
            f"{ENV_OVERRIDE}={override}, which does not exist (the runtime fails, it does not fall back)"
            if override
            else "none of " + ", ".join(SEARCH_ORDER) + " exists"
        )
        return make(
            ctx,
            "fail",
            f"no kata configuration file in effect: {why}",
            evidence,
            (
                "kata-config-missing",
                "Install kata-containers (openEuler: the kata-containers package, which ships "
                "/usr/share/defaults/kata-containers/configuration.toml), copy it to "
                "/etc/kata-containers/configuration.toml and edit that copy. " + fix_set,
            ),
            existing=existing,
        )
    text, why = await _read_text(t, path)
    if text is None:
        return make(ctx, "unknown", f"kata loads {path}, but it cannot be read here: {why}", evidence, file=path)
    try:
        cfg = parse_kata_config(text, source=path)
    except ParseError as e:
        return make(
            ctx,
            "fail",
            f"the kata configuration in effect is not valid: {e}",
            [*evidence, ev(ctx, str(e), path, t.name)],
            ("kata-config-missing", f"Repair {path} (the runtime refuses to start with it). " + fix_set),
            file=path,
        )
    right = f"[hypervisor.{cfg.hypervisor_name or 'qemu'}]"
    hv_table = f"hypervisor.{cfg.hypervisor_name}" if cfg.hypervisor_name else None
    written = key_lines(text, "guest_hook_path")
    quoted = [
        f"line {k.line}: {k.text}" + ("" if k.table == hv_table else f"  (in {table_label(k.table)})") for k in written
    ]
    evidence.append(ev(ctx, "\n".join(quoted) or "(no guest_hook_path line)", path, t.name))
    others = [p for p in existing if p != path]
    note_others = ""
    if others:
        note_others = f" (also present, not loaded: {', '.join(others)})"
        evidence.append(ev(ctx, ", ".join(others), f"not in effect: {path} comes first", t.name))
    data: dict[str, Any] = {
        "file": path,
        "guest_hook_path": cfg.guest_hook_path,
        "hypervisor": cfg.hypervisor_name,
        "cold_plug_vfio": cfg.cold_plug_vfio,
        "hot_plug_vfio": cfg.hot_plug_vfio,
        "kernel_params": cfg.kernel_params,
        "not_loaded": others,
    }
    got = cfg.guest_hook_path
    if got is None:
        elsewhere = [k for k in written if not k.commented and k.table != hv_table]
        commented = [k for k in written if k.commented and k.table == hv_table]
        there = f"commented out (line {commented[0].line})" if commented else "not set"
        if elsewhere:
            places = ", ".join(f"{table_label(k.table)} (line {k.line})" for k in elsewhere)
            return make(
                ctx,
                "fail",
                f"guest_hook_path is set in {places} of {path}, the file kata loads, but kata reads it only under "
                f"{right}, where it is {there}" + note_others,
                evidence,
                (
                    "kata-config-missing",
                    f'Move the line under {right} of {path}: `guest_hook_path = "{want}"` in that table (in place '
                    f"of the shipped line, or right under the header), and delete it from "
                    f"{', '.join(f'line {k.line}' for k in elsewhere)}, where kata ignores it.",
                ),
                set_in=[k.table for k in elsewhere],
                **data,
            )
        why = f" (it is commented out, line {commented[0].line})" if commented else ""
        if cfg.hypervisor_name is None:
            why = " (it has no [hypervisor.<name>] table)"
        return make(
            ctx,
            "fail",
            f"guest_hook_path is not set in {path}, the file kata loads{why}" + note_others,
            evidence,
            ("kata-config-missing", fix_set),
            **data,
        )
    if got == "":
        line = next((k.line for k in written if not k.commented and k.table == hv_table), None)
        return make(
            ctx,
            "fail",
            f'{path} sets guest_hook_path = ""{f" (line {line})" if line else ""}: an empty value disables guest '
            f"hooks — kata's agent runs none, so the hook under {want}/prestart never runs" + note_others,
            evidence,
            (
                "kata-config-missing",
                f'Replace the empty value: `guest_hook_path = "{want}"` under {right} of {path}. Kata 3.24 and '
                'later ship `guest_hook_path = ""` (hooks off) where older releases had the line commented out.',
            ),
            **data,
        )
    if got.rstrip("/") != want.rstrip("/"):
        return make(
            ctx,
            "fail",
            f'{path} sets guest_hook_path = "{got}", but the hook lies under {want} ({origin})',
            [*evidence, ev(ctx, want, "answers.kata.guest_hook_path")],
            (
                "kata-config-missing",
                f"Make them agree: kata's agent looks for hooks in {got.rstrip('/')}/prestart inside the guest. "
                "Either set "
                f'`guest_hook_path = "{want}"` in {path}, or move the hook and change kata.guest_hook_path.',
            ),
            **data,
        )
    summary = f'kata loads {path}: guest_hook_path = "{got}"' + note_others
    if recipe_file != path:
        return make(
            ctx,
            "warn",
            f"{summary}; but the recipe's kata.config_path is {recipe_file}, which kata does not load",
            [*evidence, ev(ctx, recipe_file, "answers.kata.config_path")],
            (
                "kata-config-missing",
                f"Set answers.kata.config_path to {path} (the file in effect), so later edits land where kata reads "
                f"them{f'; or set {ENV_OVERRIDE}' if not override else ''}.",
            ),
            **data,
        )
    if cfg.kernel_param_map.get("virtcca_cvm_guest") != "1":
        return make(
            ctx,
            "warn",
            f"{summary}; but its kernel_params lack virtcca_cvm_guest=1: the guest would not be a virtCCA CVM",
            [*evidence, ev(ctx, "\n".join(_lines_with(text, "kernel_params")) or "(no kernel_params)", path, t.name)],
            (
                "virtcca-not-cvm",
                f"Use the kata-virtcca configuration: kernel_params in [hypervisor.{cfg.hypervisor_name or 'qemu'}] "
                f"of {path} must contain virtcca_cvm_guest=1 (the shim then logs 'Enabling Arm VirtCCA protection').",
            ),
            **data,
        )
    return make(ctx, "pass", summary, evidence, **data)
