"""KATA-5.2: ``nvidia-smi`` inside the confidential container through ``ctr task exec``, read by the doctor's check.

The seed's plain ``nvidia-smi`` table is shown line by line as it comes; the verdict is the doctor's
``guest.nvidia_smi`` (its query run and parsed by :mod:`cai_tui.parsers.nvidia_smi`) on a ``CtrTarget`` built from
``answers.container.{name,namespace,address}``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .. import events
from ..events import EventSink
from .container import _need_running, exec_argv, guest_target
from .container_ctr import KataRunError, stream


def nvidia_smi(loaded: Any, sink: EventSink, *, step: str = "container.smi") -> str:
    from ..checks.base import CheckContext
    from ..checks.registry import all_checks
    from ..checks.runner import run_checks
    from ..recipe import REDACTOR

    answers = loaded.recipe.answers
    _need_running(answers)
    target = guest_target(answers)
    stream(exec_argv(answers, "nvidia-smi"), sink, step=step, timeout=60, source=target.name)
    ctx = CheckContext(recipe=loaded.recipe, targets={"guest": target}, redactor=REDACTOR, timeout=30.0)
    (outcome,) = asyncio.run(run_checks([all_checks()["guest.nvidia_smi"]], ctx, timeout=30.0))
    r = outcome.result
    sink(events.note(f"guest.nvidia_smi {r.status}: {r.summary}", step=step))
    if r.status not in ("pass", "warn"):
        fix = f"; {r.fix.text}" if r.fix else ""
        raise KataRunError(f"guest.nvidia_smi {r.status}: {r.summary}{fix}")
    return f"nvidia-smi in {target.name}: {r.summary}"


__all__ = ["nvidia_smi"]
