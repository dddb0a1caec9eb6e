"""What every renderer returns, and the secret placeholders shared by them.

A renderer never resolves a secret unless asked to (``resolve=True``, only when a file is about to be written);
otherwise each secret is shown as ``<from env:NAME>`` so that ``cai-tui render`` can print safely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..recipe import CaiRecipe, KataRecipe, SecretRef, resolve_secret


class RenderError(Exception):
    """The recipe lacks something the artifact needs; the message names the field and the fix."""


@dataclass(frozen=True)
class Rendered:
    text: str
    mode: int
    path: str | None  # default destination (may start with ~), None for text that is only shown
    secrets_resolved: bool = False
    notes: tuple[str, ...] = field(default=())


Prompter = Callable[[str], str]


def placeholder(ref: SecretRef) -> str:
    return f"<from {ref}>"


class SecretSlots:
    """Turns secret references into values (resolve) or visible placeholders (preview), remembering which."""

    def __init__(self, resolve: bool, prompt: Prompter | None) -> None:
        self.resolve = resolve
        self.prompt = prompt
        self.resolved = False

    def __call__(self, ref: SecretRef, *, field: str) -> str:
        if not self.resolve:
            return placeholder(ref)
        value = resolve_secret(ref, field=field, prompt=self.prompt)
        self.resolved = True
        return value


class Renderer:
    kind: ClassVar[str]
    title: ClassVar[str]
    flow: ClassVar[str]  # "cai" | "kata-virtcca"
    default_path: ClassVar[str | None]
    mode: ClassVar[int] = 0o644

    def render(self, recipe: Any, *, resolve: bool = False, prompt: Prompter | None = None) -> Rendered:
        raise NotImplementedError

    def _check_flow(self, recipe: Any) -> None:
        flow = getattr(recipe, "flow", None)
        if flow != self.flow:
            raise RenderError(f"{self.kind} belongs to the {self.flow} flow; this recipe's flow is {flow}")

    def done(self, text: str, *, resolved: bool = False, notes: tuple[str, ...] = ()) -> Rendered:
        return Rendered(text=text, mode=self.mode, path=self.default_path, secrets_resolved=resolved, notes=notes)


def need(value: Any, field: str, hint: str = "") -> Any:
    if value is None or value == "":
        raise RenderError(f"answers.{field} is not set{'; ' + hint if hint else ''}")
    return value


RecipeT = CaiRecipe | KataRecipe
