"""``cai-tui stages``: the wizard's stages per flow, from screens/."""

from __future__ import annotations

import json

import typer


def stages_command(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable: schema cai-tui/stages/v1."),
    lang: str = typer.Option("en", "--lang", help="en or zh (human output)."),
) -> None:
    """List both flows' stages with the procedure steps they cover."""
    from ..stages import StageSpecError, load_all

    try:
        flows = load_all()
    except StageSpecError as e:
        for p in e.problems:
            typer.echo(str(p), err=True)
        raise typer.Exit(2) from None
    if as_json:
        doc = {
            "schema": "cai-tui/stages/v1",
            "flows": [
                {
                    "flow": f.flow,
                    "stages": [
                        {
                            "id": s.id,
                            "order": s.order,
                            "title": s.title.en,
                            "title_zh": s.title.zh,
                            "covers": s.covers,
                            "fields": s.field_paths,
                            "actions": s.actions,
                            "checks": s.checks,
                            "artifacts": s.artifacts,
                        }
                        for s in f.stages
                    ],
                    "unimplemented": f.unknown,
                }
                for f in flows.values()
            ],
        }
        typer.echo(json.dumps(doc, indent=2, ensure_ascii=False))
        return
    for f in flows.values():
        typer.echo(f"{f.flow}:")
        for s in f.stages:
            typer.echo(f"  {s.order:02d} {s.id:<26} {s.title.get(lang)}  [{', '.join(s.covers)}]")
