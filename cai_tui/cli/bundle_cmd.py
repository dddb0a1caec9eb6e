"""``cai-tui bundle``: a support bundle to attach to a ticket (the tool's ``cai-bug-reporter.sh``, CAI-F5).

Exit 0 when the bundle is written (it prints the path, the size and what was removed), 2 for input errors (a bad
recipe, target or output path). A collector that fails is recorded in the bundle's ``errors.txt``, not an exit code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from .common import load_or_report, run_closing

EXIT_OK, EXIT_USAGE = 0, 2


def bundle_command(
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the bundle, e.g. cai-diagnostic.tar.gz."),
    recipe: Path | None = typer.Option(None, "--recipe", help="The recipe (its secrets are resolved to remove them)."),
    target: str | None = typer.Option(
        None,
        "--target",
        help="The machine to describe: local, ssh://user@host[:port], docker://CONTAINER or ctr://TASK.",
    ),
    pseudonymize: bool = typer.Option(
        False,
        "--pseudonymize",
        help="Replace host names and IP addresses by consistent pseudonyms; the mapping goes to OUTPUT.mapping.json "
        "(mode 0600), never into the bundle.",
    ),
    timeout: float = typer.Option(8.0, "--timeout", help="Seconds each doctor check may take."),
) -> None:
    """Collect versions, doctor results, container logs, files and machine facts, with secrets removed."""
    raise typer.Exit(
        run_bundle(output=output, recipe=recipe, target=target, pseudonymize=pseudonymize, timeout=timeout)
    )


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def run_bundle(*, output: Path, recipe: Path | None, target: str | None, pseudonymize: bool, timeout: float) -> int:

    from ..bundle import BundleOptions, build_bundle
    from ..engine.session import build_targets, role_for

    if not timeout > 0:
        _err(f"cai-tui bundle: --timeout must be a positive number of seconds, not {timeout:g}")
        return EXIT_USAGE
    output = output.expanduser()
    if output.is_dir():
        _err(f"cai-tui bundle: -o {output}: is a directory; name the file, e.g. {output}/cai-diagnostic.tar.gz")
        return EXIT_USAGE
    if not output.parent.is_dir():
        _err(f"cai-tui bundle: -o {output}: the directory {output.parent} does not exist")
        return EXIT_USAGE
    loaded = None
    if recipe is not None:
        loaded = load_or_report(recipe)
        if loaded is None:
            return EXIT_USAGE
    rec = loaded.recipe if loaded is not None else None
    flow = rec.flow if rec is not None else None
    try:
        targets = build_targets(rec, flow, target, None)
    except ValueError as e:
        _err(f"cai-tui bundle: {e}")
        return EXIT_USAGE
    role = role_for(flow, target or "")

    opts = BundleOptions(
        output=output,
        loaded=loaded,
        targets=targets,
        role=role,
        pseudonymize=pseudonymize,
        doctor_timeout=timeout,
    )

    try:
        report = run_closing(build_bundle(opts), targets)
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    except OSError as e:
        _err(f"cai-tui bundle: cannot write {output}: {e.strerror or e}")
        return EXIT_USAGE
    removed = ", ".join(f"{k} {v}" for k, v in sorted(report.counts.items())) or "nothing"
    print(f"{report.path} ({report.size} bytes, {len(report.members)} files)")
    print(f"removed: {removed}")
    if report.mapping_path is not None:
        print(f"pseudonyms: {report.pseudonyms}; mapping (keep it, do not send it): {report.mapping_path}")
    if report.unresolved:
        print(f"secret references not resolved: {len(report.unresolved)} (see README.txt in the bundle)")
    if report.errors:
        print(f"not collected: {len(report.errors)} item(s) (see errors.txt in the bundle)")
    return EXIT_OK
