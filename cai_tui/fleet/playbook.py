"""The engine's plan of one stage compiled into an Ansible play (a playbook as data) for many hosts.

What runs on the hosts (the flow's main role: the CAI instance, the kata host):

* a generated file the host needs (``cai.env``, the compose file) → a ``copy`` task (mode, ``backup: true``), its
  source rendered per host into the private work dir (0600; ``no_log`` when it holds a resolved secret);
* a doer (``cai-tui …``) → a ``command`` task (argv, the engine's JSON-lines events on, the host's copy of its recipe
  — references only, never values —), guarded by ``cai-tui doctor --only <its checks>`` on the host so that a
  re-run reports ``ok``; a doer that finds its work done says so and the task reports ``ok``;
* the checks and the manual steps → one capture task at the end of the stage (``script``: no Python on the host),
  judged on the controller by the engine's own code.

Per-host values (destinations, argv, which items apply) go into one vars file per host (``include_vars``), so the
play is the same for every host; nothing secret is in the play, the vars files, envvars or extravars.
"""

from __future__ import annotations

import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import events as ev
from ..engine.plan import INSTANCE_FILES, ON_FAILURE

if TYPE_CHECKING:
    from ..engine.items import Item
    from ..recipe import LoadedRecipe

CAPTURE = "cai-tui capture"
HOST_CHECKS = "cai-tui checks"  # the stage's checks run on the host by its own cai-tui (doctor --json)
# An exported play fails a host as doctor's exit says, except exit 2 for "nothing was checked" (every selected check
# skipped), which the engine does not count as a failure; other exits 2 are bad input and fail. `--lang en` keeps the
# phrase the condition looks for.
DOCTOR_LANG = ["--lang", "en"]
NOTHING_CHECKED = "nothing was checked"


def _doctor_failed(var: str) -> str:
    return f"{var}.rc not in [0, 2] or ({var}.rc == 2 and '{NOTHING_CHECKED}' not in {var}.stdout)"


VARS = "cai-tui vars"
RECIPE_TASK = "cai-tui recipe"
REMOTE_RECIPE_DIR = ".config/cai-tui/fleet"  # under the remote user's home (commands run with chdir ~)
COMMAND_VAR = "cai_tui_command"  # host var: how cai-tui is started on that host (default: cai-tui on PATH)


@dataclass
class TaskRef:
    """What a task of the play stands for."""

    kind: str  # file | file_result | folder | guard | action | capture | host_checks | setup
    key: str = ""  # the item's key in the vars file (i0, i1, …)
    item_id: str = ""


@dataclass
class StagePlay:
    play: dict[str, Any]
    tasks: dict[str, TaskRef] = field(default_factory=dict)  # task name → what it stands for
    compiled: set[str] = field(default_factory=set)  # item ids that run as tasks
    capture_boundary: str | None = None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # host → what its tasks read (no secret)
    host_checks: list[str] = field(default_factory=list)  # check ids the hosts' own doctor runs


def compiles(item: Item, role: str) -> str | None:
    """``file`` / ``action`` when ``item`` runs as a task on the hosts, else None (judged or reported here)."""
    if item.target != role or not item.applies or item.problems:
        return None
    if item.kind == "file" and item.name in INSTANCE_FILES:
        return "file"
    if item.kind == "action" and item.argv and item.name.split("#", 1)[0] not in ON_FAILURE:
        return "action"
    return None


def remote_recipe(name: str, host: str) -> str:
    """Where the host's recipe goes, under the remote home: named for the inventory host too (two inventory names
    for one machine, the lab's case, must not share it)."""
    return f"{REMOTE_RECIPE_DIR}/{name}-{host}.yaml"


def host_argv(item: Item, recipe_path: str, remote: str, command: str) -> list[str]:
    """The doer's argv as it runs on the host: its cai-tui, the host's copy of the recipe."""
    argv = list(item.argv)
    if argv and argv[0] == "cai-tui":
        argv[0:1] = shlex.split(command) or ["cai-tui"]
    return [remote if _same(a, recipe_path) else a for a in argv]


def _same(arg: str, recipe_path: str) -> bool:
    return arg.endswith((".yaml", ".yml")) and os.path.abspath(os.path.expanduser(arg)) == recipe_path


def compile_stage(
    stage: str,
    hosts: dict[str, tuple[LoadedRecipe, list[Item], dict[str, Any]]],
    role: str,
    recipe_path: str,
    work: Path,
    *,
    capture: bool,
    export: bool = False,
) -> StagePlay:
    """The play of ``stage`` for ``hosts`` (name → (recipe, the stage's items, host vars)). ``capture``: end with
    the stage's checks — run by the host's own cai-tui (``doctor --json``) when the stage runs doers there (so
    cai-tui is there, and checks that read the host's files can judge), else as a capture judged on the controller.

    For a run (``export=False``) each host's vars file, rendered files and recipe copy are written under ``work``
    (0600). For ``--export-playbook`` (``export=True``) nothing secret is written: the play renders each file on
    the controller at run time (``cai-tui render``, ``no_log``), reads the host's vars from ``cai_tui_stages``
    (host_vars/) and judges captures with ``cai-tui doctor --sysroot``; the caller writes ``values`` and recipes."""
    from ..recipe import REDACTOR
    from ..render import registry

    order: list[Item] = []
    seen: set[str] = set()
    for _loaded, items, _vars in hosts.values():
        for it in items:
            if it.id not in seen and compiles(it, role):
                seen.add(it.id)
                order.append(it)
    keys = {it.id: f"i{n}" for n, it in enumerate(order)}
    secret_files: set[str] = set()
    recipe_name = Path(recipe_path).stem
    needs_recipe = any(compiles(it, role) == "action" for it in order)
    on_host: list[str] = []
    judged: list[str] = []  # export: the checks the controller's doctor judges from the capture
    for _loaded, items, _vars in hosts.values():
        for it in items:
            remote_check = it.kind == "check" and it.target not in ("workstation", "local", "console")
            if capture and needs_recipe and remote_check and it.name not in on_host:
                on_host.append(it.name)
            elif it.kind == "check" and it.name not in judged and not (needs_recipe and remote_check):
                judged.append(it.name)
    play = StagePlay({})
    for host, (loaded, items, hvars) in hosts.items():
        mine = {it.id: it for it in items}
        values: dict[str, Any] = {"recipe_dir": REMOTE_RECIPE_DIR, "items": {}}
        command = str(hvars.get(COMMAND_VAR) or "cai-tui")
        remote = remote_recipe(recipe_name, host)
        for it in order:
            key = keys[it.id]
            own = mine.get(it.id)
            kind = compiles(own, role) if own is not None else None
            entry: dict[str, Any] = {"run": kind is not None}
            if own is not None and kind == "file":
                out = registry.get(own.name).render(loaded.recipe, resolve=not export, prompt=None)
                if export or out.secrets_resolved or (len(REDACTOR) and out.text in REDACTOR):
                    secret_files.add(key)
                if not export:
                    _write_private(work / "files" / host / key, out.text)
                entry.update(dest=own.text, mode=f"{out.mode:04o}", parent=os.path.dirname(own.text) or ".")
                entry["kind"] = own.name
            elif own is not None and kind == "action":
                entry["argv"] = host_argv(own, recipe_path, remote, command)
                if own.guard and own.changing:
                    entry["guard_argv"] = [*shlex.split(command), "doctor", "--recipe", remote]
                    entry["guard_argv"] += ["--only", ",".join(own.guard)]
            values["items"][key] = entry
        if on_host:
            values["doctor_argv"] = [*shlex.split(command), "doctor", "--recipe", remote, "--only", ",".join(on_host)]
            values["doctor_argv"] += DOCTOR_LANG if export else ["--json"]
        play.values[host] = values
        if not export:
            _write_private(work / "vars" / f"{host}.json", json.dumps(values, indent=1))
            if needs_recipe:
                from ..recipe.yaml_io import dumps_recipe

                _write_private(work / "recipes" / f"{host}.yaml", dumps_recipe(loaded))

    root = "{{ playbook_dir }}" if export else str(work)
    host_dir = "{{ inventory_hostname }}"
    tasks: list[dict[str, Any]] = []
    if not export:
        tasks.append(
            {
                "name": VARS,
                "include_vars": {"file": f"{work}/vars/{host_dir}.json", "name": "cai_tui"},
                "tags": ["always"],
            }
        )
        play.tasks[VARS] = TaskRef("setup")
    if needs_recipe:
        tasks.append(
            {
                "name": RECIPE_TASK,
                "block": [
                    {"file": {"path": "~/{{ cai_tui.recipe_dir }}", "state": "directory", "mode": "0700"}},
                    {
                        "copy": {
                            "src": f"{root}/recipes/{host_dir}.yaml",
                            "dest": f"~/{remote_recipe(recipe_name, host_dir)}",
                            "mode": "0600",
                        }
                    },
                ],
                "tags": ["always"],
            }
        )
    for it in order:
        key = keys[it.id]
        ref = f"cai_tui['items']['{key}']"
        tags = [stage, it.name.split("#", 1)[0], it.covers]
        name = f"{key} {it.id}"
        if compiles(it, role) == "file":
            rendered = f"{root}/.rendered/{host_dir}/{key}" if export else f"{work}/files/{host_dir}/{key}"
            steps: list[dict[str, Any]] = []
            if export:  # rendered at run time on the controller, secrets resolved there, removed at the end
                steps.append(
                    {
                        "name": f"{name} (render)",
                        "delegate_to": "localhost",
                        "check_mode": False,
                        "changed_when": False,
                        "no_log": key in secret_files,
                        "command": {
                            "argv": [
                                "cai-tui",
                                "render",
                                f"{{{{ {ref}.kind }}}}",
                                rendered,
                                "--recipe",
                                f"{root}/recipes/{host_dir}.yaml",
                                "--write",
                                "--yes",
                            ]
                        },
                    }
                )
            steps += [
                {"name": f"{name} (folder)", "file": {"path": f"{{{{ {ref}.parent }}}}", "state": "directory"}},
                {
                    "name": name,
                    "copy": {
                        "src": rendered,
                        "dest": f"{{{{ {ref}.dest }}}}",
                        "mode": f"{{{{ {ref}.mode }}}}",
                        "backup": True,
                    },
                    "no_log": key in secret_files,
                    "register": f"cai_tui_copy_{key}",
                },
                {  # no_log hides the copy's whole result: say what is not secret (changed, the backup)
                    "name": f"{name} (result)",
                    "debug": {
                        "msg": {
                            "changed": f"{{{{ cai_tui_copy_{key}.changed | default(false) }}}}",
                            "backup_file": f"{{{{ cai_tui_copy_{key}.backup_file | default('') }}}}",
                        }
                    },
                },
            ]
            block: dict[str, Any] = {"name": name, "when": f"{ref}.run", "tags": tags, "block": steps}
            if export:  # the rendered file (secrets resolved) never outlives its copy, even when the copy fails
                block["always"] = [
                    {
                        "name": f"{name} (forget)",
                        "delegate_to": "localhost",
                        "check_mode": False,
                        "changed_when": False,
                        "file": {"path": rendered, "state": "absent"},
                    }
                ]
            tasks.append(block)
            play.tasks[name] = TaskRef("file", key, it.id)
            play.tasks[f"{name} (folder)"] = TaskRef("folder", key, it.id)
            play.tasks[f"{name} (render)"] = TaskRef("setup", key, it.id)
            play.tasks[f"{name} (result)"] = TaskRef("file_result", key, it.id)
            continue
        guard_name = f"{key} guard {it.id}"
        when = f"{ref}.run"
        if it.guard and it.changing:
            tasks.append(
                {
                    "name": guard_name,
                    "command": {"argv": f"{{{{ {ref}.guard_argv }}}}", "chdir": "~"},
                    "register": f"cai_tui_guard_{key}",
                    "changed_when": False,
                    "failed_when": False,
                    "check_mode": False,
                    "when": f"{ref}.run and 'guard_argv' in {ref}",
                    "tags": tags,
                }
            )
            play.tasks[guard_name] = TaskRef("guard", key, it.id)
            when += f" and (cai_tui_guard_{key} is skipped or cai_tui_guard_{key}.rc != 0)"
        tasks.append(
            {
                "name": name,
                "command": {"argv": f"{{{{ {ref}.argv }}}}", "chdir": "~"},
                "environment": {ev.EVENTS_ENV: "jsonl"},
                "register": f"cai_tui_run_{key}",
                "changed_when": f'\'"outcome":"{ev.UNCHANGED}"\' not in cai_tui_run_{key}.stdout',
                "when": when,
                "tags": tags,
            }
        )
        play.tasks[name] = TaskRef("action", key, it.id)
    if on_host:
        tasks.append(
            {
                "name": HOST_CHECKS,
                "command": {"argv": "{{ cai_tui.doctor_argv }}", "chdir": "~"},
                "changed_when": False,
                # a run judges the JSON here, as the engine judges; an export fails the host as doctor's exit says
                "failed_when": _doctor_failed("cai_tui_checks") if export else False,
                "register": "cai_tui_checks",
                "check_mode": False,
                "tags": [stage, "checks"],
            }
        )
        play.tasks[HOST_CHECKS] = TaskRef("host_checks")
        play.host_checks = on_host
    elif capture:
        _add_capture(play, tasks, stage, work, root, export, judged)
    play.compiled = {it.id for it in order}
    play.play = {"name": f"cai-tui stage {stage}", "hosts": "all", "gather_facts": False, "tasks": tasks}
    if export:
        play.play["vars"] = {"cai_tui": f"{{{{ cai_tui_stages['{stage}'] }}}}"}
    return play


def _add_capture(
    play: StagePlay, tasks: list[dict[str, Any]], stage: str, work: Path, root: str, export: bool, judged: list[str]
) -> None:
    from .capture import capture_script

    script = work / "capture.sh"
    if script.exists():
        boundary = _boundary_of(script)
    else:
        text, boundary = capture_script()
        _write_private(script, text)
        if export:
            script.chmod(0o755)
    tasks.append(
        {
            "name": CAPTURE,
            "script": {"cmd": f"{root}/capture.sh", "executable": "/bin/sh"},
            "changed_when": False,
            "check_mode": False,
            "register": "cai_tui_capture",
            "tags": [stage, "capture", "checks"],
        }
    )
    play.tasks[CAPTURE] = TaskRef("capture")
    play.capture_boundary = boundary
    if export and judged:
        stream = f"{root}/.captures/{stage}-{{{{ inventory_hostname }}}}.txt"
        tasks += [
            {
                "name": f"{CAPTURE} (folder)",
                "delegate_to": "localhost",
                "check_mode": False,
                "changed_when": False,
                "file": {"path": f"{root}/.captures", "state": "directory", "mode": "0700"},
                "tags": [stage, "capture", "checks"],
            },
            {
                "name": f"{CAPTURE} (keep)",
                "delegate_to": "localhost",
                "check_mode": False,
                "changed_when": False,
                "copy": {"content": "{{ cai_tui_capture.stdout }}", "dest": stream, "mode": "0600"},
                "tags": [stage, "capture", "checks"],
            },
            {
                "name": f"cai-tui judge {stage}",
                "delegate_to": "localhost",
                "check_mode": False,
                "changed_when": False,
                "command": {
                    "argv": [
                        "cai-tui",
                        "doctor",
                        "--recipe",
                        f"{root}/recipes/{{{{ inventory_hostname }}}}.yaml",
                        "--sysroot",
                        stream,
                        "--only",
                        ",".join(judged),
                        *DOCTOR_LANG,
                    ]
                },
                "register": "cai_tui_judge",
                "failed_when": _doctor_failed("cai_tui_judge"),
                "tags": [stage, "checks"],
            },
        ]


def _boundary_of(script: Path) -> str:
    for line in script.read_text().splitlines():
        if line.startswith("B="):
            return shlex.split(line[2:])[0]
    raise ValueError(f"{script}: no boundary")


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
