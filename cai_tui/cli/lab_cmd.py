"""``cai-tui lab …``: the embedded loopback Trustee, OSS and KMS.

Imports of the lab itself stay inside the command functions: ``cai-tui --help`` must stay fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

lab_app = typer.Typer(
    help="The embedded lab: loopback Trustee (KBS + AS), OSS and KMS with fault switches.", no_args_is_help=True
)

EXIT_USAGE = 2
BARE_NOTE = "no cipherdir, no password file, bucket lab-models empty, no KMS secret: the replay creates them"


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


@lab_app.command("serve")
def serve_command(
    faults: str = typer.Option(
        "", "--faults", help="Faults on from the start, comma-separated, NAME or NAME=PARAM (see `cai-tui lab faults`)."
    ),
    state_dir: Path | None = typer.Option(
        None,
        "--state-dir",
        help="Where the lab keeps its state (default: <state dir>/lab, e.g. ~/.local/state/cai-tui/lab; while "
        "another lab holds it, <default>-2 … -9 with ephemeral ports).",
    ),
    port_base: int | None = typer.Option(
        None,
        "--port-base",
        help="Trustee on N, OSS on N+1, KMS on N+2, the admin endpoint on N+3 (127.0.0.1), the lab instance's vLLM "
        "on N+4 (default 18600).",
    ),
    bare: bool = typer.Option(
        False,
        "--bare",
        help="Only the plaintext demo model: no cipherdir, no password file, an empty bucket without policy, no KMS "
        "secret (what a headless replay from a clean state starts from).",
    ),
    no_instance: bool = typer.Option(
        False, "--no-instance", help="Do not make the local Docker engine the lab instance (no image build, no mount)."
    ),
    protocol_version: str = typer.Option(
        "0.1.0",
        "--protocol-version",
        help="KBS protocol version the Trustee demands (seed chart 0.1.0, upstream 0.4.0).",
    ),
    flavour: str = typer.Option(
        "alibaba", "--flavour", help="Status codes of the Trustee's errors: alibaba or upstream."
    ),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every request on stderr."),
) -> None:
    """Run the lab in the foreground until SIGINT/SIGTERM.

    When ready it prints one JSON line on stdout (event, state_dir, trustee_url, oss_endpoint, kms_endpoint,
    admin_url, credentials, recipe, seed, instance); logs go to stderr. Exit 0 on a signal, 2 on bad options or a
    port in use. As root with a running Docker engine and `docker compose`, the lab also provides an instance: the
    recipe then deploys the CAI stack locally (`cai-tui deploy --recipe RECIPE --yes`).
    """
    raise typer.Exit(
        serve(
            faults=faults,
            state_dir=state_dir,
            port_base=port_base,
            protocol_version=protocol_version,
            flavour=flavour,
            verbose=verbose,
            bare=bare,
            instance=not no_instance,
        )
    )


def serve(
    *,
    faults: str,
    state_dir: Path | None,
    port_base: int | None,
    protocol_version: str,
    flavour: str,
    verbose: bool = False,
    bare: bool = False,
    instance: bool = True,
) -> int:
    import logging
    import re
    import signal
    import threading

    from ..lab.faults import UnknownFault
    from ..lab.orchestrator import DEFAULT_PORT_BASE, Lab, LabError
    from ..lab.trustee import TrusteeSettings
    from ..recipe import RecipeError

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    lab_log = logging.getLogger("cai_tui.lab")
    lab_log.addHandler(handler)
    lab_log.setLevel(logging.DEBUG if verbose else logging.INFO)
    lab_log.propagate = False

    if port_base is not None and not 1 <= port_base <= 65532:
        _err(f"cai-tui lab serve: --port-base must be between 1 and 65532 (4 consecutive ports), not {port_base}")
        return EXIT_USAGE
    if not re.fullmatch(r"\d+\.\d+\.\d+", protocol_version):
        _err(f"cai-tui lab serve: --protocol-version must look like 0.1.0 or 0.4.0, not {protocol_version!r}")
        return EXIT_USAGE
    if flavour not in ("alibaba", "upstream"):
        _err(f"cai-tui lab serve: --flavour must be alibaba or upstream, not {flavour!r}")
        return EXIT_USAGE
    settings = TrusteeSettings(protocol_version=protocol_version, flavour=flavour, release="trustee", backend="kms")  # type: ignore[arg-type]
    try:
        settings.validate()
        lab = Lab(
            state_dir=state_dir,
            port_base=port_base,
            faults=faults,
            trustee_settings=settings,
            seed="bare" if bare else "demo",
            instance=instance,
            preferred_port_base=DEFAULT_PORT_BASE,
        )
    except UnknownFault as e:
        _err(f"cai-tui lab serve: {e}")
        return EXIT_USAGE
    except ValueError as e:
        _err(f"cai-tui lab serve: {e}")
        return EXIT_USAGE

    stop = threading.Event()
    received: list[str] = []

    def on_signal(signum: int, _frame: object) -> None:
        received.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            lab.start()
        except LabError as e:
            _err(f"cai-tui lab serve: {e}")
            return EXIT_USAGE
        except RecipeError as e:
            _err(f"cai-tui lab serve: the lab wrote an invalid recipe (a bug): {e}")
            return 1
        except Exception as e:
            _err(f"cai-tui lab serve: cannot start the lab: {type(e).__name__}: {e}")
            return 1
        try:
            if not stop.is_set():
                try:
                    sys.stdout.write(json.dumps(lab.ready_info()) + "\n")
                    sys.stdout.flush()
                except OSError as e:  # whoever started us no longer reads stdout
                    _err(f"cai-tui lab serve: cannot write the ready line ({e}); stopping")
                    return 1
                _err(
                    f"lab ready: Trustee {lab.trustee_url}  OSS {lab.oss_endpoint}  KMS {lab.kms_endpoint}  "
                    f"admin {lab.admin_url}\n  recipe {lab.recipe_path}\n  credentials {lab.credentials_path}\n"
                    + (f"  {lab.side_by_side_note}\n" if lab.side_by_side_note else "")
                    + (f"  bare seed: {BARE_NOTE}\n" if bare else "")
                    + f"  instance: {lab.instance_info['message']}\n"
                    "  stop with Ctrl-C (SIGINT) or SIGTERM"
                )
            while not stop.wait(1.0):
                pass
            lab_log.info("lab: %s received", received[0] if received else "stop")
        finally:
            lab.stop()
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 0


@lab_app.command("faults")
def faults_command() -> None:
    """List every fault switch with what it does, and how to switch faults while the lab runs."""
    from ..lab import admin
    from ..lab.faults import FAULTS

    width = max(len(n) for n in FAULTS)
    lines = ["Fault switches of the lab (cai-tui lab serve --faults NAME[=PARAM],…):", ""]
    for component in ("trustee", "oss", "kms"):
        lines.append(f"{component}:")
        for name, spec in sorted(FAULTS.items()):
            if spec.component != component:
                continue
            lines.append(f"  {name:<{width}}  {spec.doc}")
        lines.append("")
    lines.append("Switching faults while the lab runs: the admin endpoint.")
    doc = admin.__doc__ or ""
    body = doc.split("\n\n", 1)[1] if "\n\n" in doc else doc
    lines.append(body.rstrip())
    typer.echo("\n".join(lines))


@lab_app.command("kata")
def kata_command(
    directory: Path = typer.Argument(..., help="An empty folder (made if missing) for the kata lab and its recipe."),
) -> None:
    """The kata lab: the kata-virtcca flow on this machine (root; a small ext4 rootfs, kata's own configuration, a fake
    sysfs GPU, Debian's CNI plugins, a private containerd with runc for the kata runtime). Prints the recipe and the
    environment to replay it with; runs until Ctrl-C or SIGTERM, then stops and removes what a run left."""
    raise typer.Exit(run_kata_lab(directory))


def run_kata_lab(directory: Path) -> int:
    import os
    import shlex
    import signal
    import threading

    from ..lab.kata.not_real import describe
    from ..lab.kata.orchestrator import start_kata_lab

    name = "cai-tui lab kata"
    if os.geteuid() != 0:
        _err(f"{name}: the kata lab mounts images, makes network namespaces and runs containerd: run it as root")
        return EXIT_USAGE
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            lab = start_kata_lab(directory.expanduser())
        except FileExistsError as e:
            _err(f"{name}: {e}")
            return EXIT_USAGE
        except Exception as e:  # a missing tool, docker down: the message says what to install or start
            _err(f"{name}: cannot start the kata lab: {type(e).__name__}: {e}")
            return 1
        try:
            env = " ".join(f"{k}={shlex.quote(v)}" for k, v in lab.env.items())
            _err(
                f"kata lab ready under {lab.dir}\n  recipe {lab.recipe}\n"
                f"  replay: {env} cai-tui replay {shlex.quote(str(lab.recipe))} --yes\n"
                f"  undo:   {env} cai-tui replay {shlex.quote(str(lab.recipe))} --undo --yes\n"
                f"  not the real thing:\n{describe()}\n"
                "  stop with Ctrl-C (SIGINT) or SIGTERM"
            )
            sys.stdout.write(json.dumps({"recipe": str(lab.recipe), "env": lab.env}) + "\n")
            sys.stdout.flush()
            while not stop.wait(1.0):
                pass
        finally:
            left = lab.stop()
            if left:
                _err(f"{name}: removed what a run left: {', '.join(left)}")
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    return 0
