"""``cai-tui lab …``: the embedded loopback Trustee, OSS and KMS."""

from __future__ import annotations

import typer

lab_app = typer.Typer(help="The embedded lab: loopback Trustee (KBS + AS), OSS and KMS with fault switches.", no_args_is_help=True)
