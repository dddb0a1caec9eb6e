"""The ``cai-tui`` entry point. Keep imports here light: ``cai-tui --help`` must stay fast."""

from __future__ import annotations

import sys

import typer

from .. import __version__
from .ask_cmd import ask_command
from .bundle_cmd import bundle_command
from .deploy_cmd import deploy_command
from .doctor_cmd import doctor_command
from .init_cmd import init_command
from .kata_cmd import kata_app
from .kms_cmd import kms_app
from .lab_cmd import lab_app
from .model_cmd import model_app
from .recipe_cmd import recipe_app
from .render_cmd import render_command
from .replay_cmd import replay_command
from .serve_cmd import serve_command
from .stages_cmd import stages_command
from .tng_cmd import tng_app
from .tools_cmd import tools_app
from .troubleshoot_cmd import troubleshoot_command
from .trustee_cmd import trustee_app

app = typer.Typer(
    name="cai-tui",
    help="Guided set-up and diagnostics for secure LLM inference on confidential computing "
    "(Alibaba Cloud gn8v-tee + Confidential AI; openEuler kata-virtcca GPU passthrough).",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(recipe_app, name="recipe")
app.add_typer(lab_app, name="lab")
app.add_typer(model_app, name="model")
app.add_typer(kms_app, name="kms")
app.add_typer(tools_app, name="tools")
app.add_typer(trustee_app, name="trustee")
app.add_typer(tng_app, name="tng")
app.add_typer(kata_app, name="kata")
app.command("stages")(stages_command)
app.command("doctor")(doctor_command)
app.command("bundle")(bundle_command)
app.command("render")(render_command)
app.command("deploy")(deploy_command)
app.command("troubleshoot")(troubleshoot_command)
app.command("ask")(ask_command)
app.command("replay")(replay_command)
app.command("init")(init_command)
app.command("serve")(serve_command)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"cai-tui {__version__}")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    lab: bool = typer.Option(False, "--lab", help="Start the embedded lab and open the wizard on its demo recipe."),
    bare: bool = typer.Option(
        False, "--bare", help="With --lab: a bare lab (plaintext model only), so every stage has work to do."
    ),
    recipe: str = typer.Option(None, "--recipe", help="Open the wizard on this recipe file."),
    lang: str = typer.Option("en", "--lang", help="Interface language: en or zh."),
) -> None:
    """With no sub-command, open the wizard."""
    if ctx.invoked_subcommand is not None:
        return
    from .wizard_cmd import run_wizard

    raise typer.Exit(run_wizard(lab=lab, recipe=recipe, lang=lang, bare=bare))


def main(argv: list[str] | None = None) -> int:
    from .wizard_args import wizard_args

    try:
        wizard = wizard_args(sys.argv[1:] if argv is None else list(argv))
        if wizard is not None:  # only the wizard's options: skip typer's parsing (it imports pydantic)
            from .wizard_cmd import run_wizard

            return run_wizard(**wizard)
        app(args=argv, standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
