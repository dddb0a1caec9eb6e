"""Command line: ``cai-tui`` and its sub-commands (typer). Heavy libraries are imported inside commands."""
