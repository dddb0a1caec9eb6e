"""``cai-tui init --plain``: start from the flow's example recipe, ask its stages, validate, save.

Exit codes: 0 saved; 1 not saved (an existing file kept and no other name given); 2 no terminal or a bad
argument; 130 Ctrl-C / Ctrl-D (nothing written).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from .texts import say, wrap

if TYPE_CHECKING:
    from ..recipe.draft import Draft
    from .ask import Asker


def default_output(flow: str) -> Path:
    return Path.cwd() / f"{flow}-recipe.yaml"


def run_plain(*, flow: str, output: Path | None, lang: str) -> int:
    from ..recipe.draft import Draft
    from ..recipe.examples import example_path
    from ..recipe.yaml_io import loads_recipe
    from ..stages import load_all
    from .ask import Aborted, Asker
    from .interview import Interview, out
    from .lines import LineAsker, has_terminal

    target = output if output is not None else default_output(flow)
    draft = Draft(loads_recipe(example_path(flow).read_text(encoding="utf-8"), name=f"<new {flow} recipe>"))
    stages = load_all()[flow]
    terminal = has_terminal()
    asker = Asker(lang) if terminal else LineAsker(lang)
    try:
        if not terminal:
            out(say("line_mode", lang))
        for line in say("intro", lang, flow=flow, n=len(stages.stages)).splitlines():
            out(wrap(line))
        if target.exists():
            out(say("exists_note", lang, path=target))
        Interview(draft, stages, asker).run()
        problems = draft.validate()
        if problems:
            out(say("invalid_recipe", lang))
            for p in problems:
                out(f"  {p}")
            return 2
        written = _save(draft, target, asker)
    except (Aborted, KeyboardInterrupt):
        out()
        out(say("aborted", lang))
        return 130
    if written is None:
        out(say("not_saved", lang))
        return 1
    _finish(draft, written, lang)
    return 0


def _save(draft: Draft, target: Path, asker: Asker) -> Path | None:
    """Save to ``target``; an existing file only when the person agrees, else another name (None: none given)."""
    from ..recipe.problems import RecipeError
    from .interview import out

    lang = asker.lang
    out()
    while True:
        if target.is_dir():
            out(say("is_dir", lang, path=target))
        elif not target.exists() or asker.confirm(
            say("overwrite", lang, path=target, bak=target.with_name(target.name + ".bak")), False
        ):
            try:
                return draft.save(target)
            except (RecipeError, OSError) as e:
                out(say("save_failed", lang, error=e))
        answer = asker.text(say("other_file", lang))
        if not answer:
            return None
        target = Path(answer).expanduser()


def _finish(draft: Draft, written: Path, lang: str) -> None:
    from ..actions.encryption_method import method_lacks
    from ..recipe.model import CaiRecipe
    from .interview import out

    out(say("saved", lang, path=written))
    recipe = draft.recipe
    if isinstance(recipe, CaiRecipe):
        for lack in method_lacks(recipe.answers):
            out(say("note", lang, text=lack))
    out(say("next", lang))
    name = shlex.quote(str(written))
    out(f"  cai-tui recipe validate {name}")
    out(f"  cai-tui replay {name} --plan")
