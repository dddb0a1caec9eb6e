"""``cai-tui recipe …``: validate files, print the JSON Schema."""

from __future__ import annotations

import json

import typer

recipe_app = typer.Typer(help="Check and describe recipe files.", no_args_is_help=True)


@recipe_app.command("validate")
def validate(
    files: list[str] = typer.Argument(..., help="Recipe files (YAML)."),
    here: bool = typer.Option(
        False, "--here", help="Also check against this machine (subnet vs existing routes, TNG proxy port free)."
    ),
    resolve: bool = typer.Option(
        False,
        "--resolve-secrets",
        help="Resolve env:/file:/keyring: references and check their lengths (values never shown).",
    ),
) -> None:
    """Exit 0 when every file is valid; 2 with one line per problem otherwise."""
    from ..recipe import RecipeError, load_recipe
    from ..recipe.checks_here import host_problems, secret_problems

    failed = False
    for name in files:
        try:
            loaded = load_recipe(name)
        except RecipeError as e:
            failed = True
            for p in e.problems:
                typer.echo(str(p), err=True)
            continue
        problems = []
        if here:
            problems += host_problems(loaded)
        if resolve:
            problems += secret_problems(loaded)
        for p in problems:
            typer.echo(str(p), err=True)
        failed = failed or bool(problems)
        if not problems:
            note = f" ({'; '.join(loaded.notes)})" if loaded.notes else ""
            typer.echo(f"{name}: ok — {loaded.recipe.flow} recipe {loaded.recipe.name!r}{note}")
            _method_notes(name, loaded.recipe)
    raise typer.Exit(2 if failed else 0)


def _method_notes(name: str, recipe: object) -> None:
    """What the chosen encryption method still lacks (CAI-1.2), as notes: a recipe is valid while being filled in."""
    from ..actions.encryption_method import method_lacks
    from ..recipe.model import CaiRecipe

    if isinstance(recipe, CaiRecipe):
        for lack in method_lacks(recipe.answers):
            typer.echo(f"{name}: note: {lack}")


@recipe_app.command("schema")
def schema() -> None:
    """Print the JSON Schema of recipes (for editors: yaml-language-server)."""
    from ..recipe import json_schema

    typer.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@recipe_app.command("new")
def new(
    output: str = typer.Argument(..., help="Where to write the new recipe."),
    flow: str = typer.Option("cai", "--flow", help="cai, kata-virtcca, or lab (the lab demo)."),
) -> None:
    """Start a recipe from the documented example of a flow (never overwrites a file)."""
    from pathlib import Path

    from ..recipe.examples import EXAMPLES  # here, not at the top: it loads the recipe models (slow start)
    from ..recipe.yaml_io import atomic_write
    from ..resources import data_dir

    if flow not in EXAMPLES:
        typer.echo(f"--flow: {flow!r} is not a flow; use one of {', '.join(EXAMPLES)}", err=True)
        raise typer.Exit(2)
    target = Path(output)
    if target.exists():
        typer.echo(f"{target}: already exists; choose another name (nothing was changed)", err=True)
        raise typer.Exit(2)
    atomic_write(target, (data_dir("recipes") / EXAMPLES[flow]).read_bytes(), mode=0o600)
    typer.echo(f"{target}: written from the {flow} example; edit it, then run: cai-tui recipe validate {target}")
