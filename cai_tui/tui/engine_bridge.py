"""The engine's events into the wizard, and the wizard's way to apply one stage through the engine.

The engine reports through a plain :data:`~cai_tui.events.EventSink`, from the event loop or from worker threads.
:class:`EventBridge` is that sink: it only redacts and queues (thread-safe, cheap), and the screen drains the queue on
a timer, so a stream of thousands of lines a second becomes a few repaints a second instead of a message per line.
:func:`apply_stage` is ``cai-tui replay --only STAGE``: the same plan, the same secret resolution, the same
:func:`~cai_tui.engine.replay.run_plans` over a :class:`~cai_tui.engine.runner.Runner`.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .. import events as ev

if TYPE_CHECKING:
    from ..engine.items import Item
    from ..engine.replay import ReplayReport
    from ..recipe.yaml_io import LoadedRecipe
    from ..stages.spec import StageSpec
    from .state import WizardState


class EventBridge:
    """An event sink any thread may call; :meth:`drain` hands the queued events to the UI in one batch."""

    def __init__(self, redact: Callable[[str], str] | None = None) -> None:
        if redact is None:
            from ..recipe import REDACTOR

            redact = REDACTOR.redact
        self._redact = redact
        self._queue: deque[ev.Event] = deque()
        self.received = 0

    def __call__(self, event: ev.Event) -> None:
        self._queue.append(event.redacted(self._redact))  # deque.append is atomic: no lock needed
        self.received += 1

    def drain(self, limit: int = 50_000) -> list[ev.Event]:
        out: list[ev.Event] = []
        pop = self._queue.popleft
        try:
            while len(out) < limit:
                out.append(pop())
        except IndexError:
            pass
        return out

    def __len__(self) -> int:
        return len(self._queue)


def event_line(event: ev.Event) -> str | None:
    """The log pane's line for an event (None: it is shown elsewhere, as progress is)."""
    if event.kind == "line":
        where = f"[{event.source}] " if event.source else ""
        return f"{where}{'! ' if event.stream == 'stderr' else ''}{event.text}"
    if event.kind == "note":
        mark = {"warn": "⚠ ", "error": "✗ "}.get(event.level, "» ")
        return f"{mark}{event.text}"
    if event.kind == "step_started":
        return f"▶ {event.step}" + (f" on {event.source}" if event.source else "")
    if event.kind == "step_finished":
        return f"■ {event.step}: {event.status}" + (f" — {event.text}" if event.text else "")
    if event.kind == "check":
        return f"✓ check {event.step}: {event.status} — {event.text}"
    return None


# --- secrets the wizard asks for -------------------------------------------------------------------------------------


@dataclass
class PromptedSecrets:
    """Values of ``prompt`` references asked in the wizard, per field, for this app's life (never written anywhere;
    each joins the redaction set when resolved, as every secret does)."""

    values: dict[str, str] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def put(self, path: str, value: str) -> None:
        with self._lock:
            self.values[path] = value

    def prompter(self, path: str) -> str:
        """The :data:`~cai_tui.recipe.secrets.Prompter` that answers from what was asked."""
        from ..recipe.secrets import SecretUnavailable

        with self._lock:
            value = self.values.get(path)
        if value is None:
            raise SecretUnavailable(f"{path}: the recipe says `prompt` and it was not asked yet; run the stage again")
        return value


_PROMPTED: dict[int, PromptedSecrets] = {}


def prompted_secrets(state: WizardState) -> PromptedSecrets:
    """The prompted values of ``state`` (one cache per wizard; gone with it)."""
    key = id(state)
    if key not in _PROMPTED:
        _PROMPTED[key] = PromptedSecrets()
        weakref.finalize(state, _PROMPTED.pop, key, None)
    return _PROMPTED[key]


def prompt_fields(loaded: LoadedRecipe, fields: set[str] | None = None) -> list[str]:
    """The recipe's fields whose secret is a ``prompt`` reference (among ``fields`` when given)."""
    from ..recipe.checks_here import iter_secret_refs

    return [
        path
        for path, ref in iter_secret_refs(loaded.recipe)
        if ref.scheme == "prompt" and (fields is None or path in fields)
    ]


# --- one stage through the engine -------------------------------------------------------------------------------------


class InputProblems(Exception):
    """Secrets could not be resolved: nothing was changed; ``problems`` name each field and the fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def plan(state: WizardState, stage: StageSpec) -> list[Item]:
    """The engine's plan of ``stage`` for the recipe as it stands (PlanError for a stage of another flow)."""
    from ..engine.plan import plan_stage

    assert state.loaded is not None
    return plan_stage(stage, state.loaded)


async def add_diffs(state: WizardState, items: list[Item], sink: ev.EventSink) -> None:
    """The file items' diffs against the targets' copies (as ``replay --plan`` shows them)."""
    from ..engine.runner import Runner

    await Runner(state.session(), sink, files_dir=state.files_dir).add_diffs(items)


async def apply_stage(
    state: WizardState,
    stage: StageSpec,
    items: list[Item],
    sink: ev.EventSink,
    cancel: ev.CancelToken,
    *,
    ask: Callable[[str], Awaitable[str | None]] | None = None,
) -> ReplayReport:
    """``cai-tui replay RECIPE --only STAGE`` in the wizard. ``ask(field)`` asks a ``prompt`` secret (None: the user
    declined, which is an input problem). Raises :class:`InputProblems` before anything changes."""
    from ..engine.replay import StagePlan, created_key_files, resolve_secrets, run_plans, stage_secret_fields
    from ..engine.runner import Runner

    loaded = state.loaded
    assert loaded is not None
    plans = [StagePlan(stage, items)]
    fields = stage_secret_fields(plans)  # as `replay --only STAGE`: the secrets this stage takes
    prompted = prompted_secrets(state)
    for path in prompt_fields(loaded, fields):
        if path in prompted.values:
            continue
        value = await ask(path) if ask is not None else None
        if not value:
            raise InputProblems([f"{path}: the recipe says `prompt` and no value was given; nothing was changed"])
        prompted.put(path, value)
    session = state.session()
    session.prompt = prompted.prompter  # the in-process work (checks, the instance's files) reads prompted values
    problems = await asyncio.to_thread(
        partial(resolve_secrets, fields=fields, prompt_ok=True),
        loaded,
        created_key_files(plans, loaded),
        prompted.prompter,
    )
    if problems:
        raise InputProblems(problems)
    runner = Runner(session, sink, files_dir=Path(state.files_dir), cancel=cancel)
    # the engine's own task, so that cancelling it (Esc) kills a running command: the report then says interrupted
    return await run_plans(runner, plans)


__all__ = [
    "EventBridge",
    "InputProblems",
    "PromptedSecrets",
    "add_diffs",
    "apply_stage",
    "event_line",
    "plan",
    "prompt_fields",
    "prompted_secrets",
]
