"""Recipe checks that need this machine or the secrets: routes, free ports, secret lengths.

Kept apart from the pure model so validating a recipe for another machine never depends on this one.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

from .model import CaiRecipe, KataRecipe
from .problems import Problem
from .secrets import SecretRef, SecretUnavailable, file_mode_warning, resolve_secret
from .yaml_io import LoadedRecipe


def ipv4_routes(route_file: Path = Path("/proc/net/route")) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(interface, destination network) of every IPv4 route except the default one."""
    out: list[tuple[str, ipaddress.IPv4Network]] = []
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return out
    for line in lines:
        parts = line.split()
        if len(parts) < 8:
            continue
        iface, dest_hex, mask_hex = parts[0], parts[1], parts[7]
        try:
            dest = ipaddress.IPv4Address(int(dest_hex, 16).to_bytes(4, "little"))
            mask = ipaddress.IPv4Address(int(mask_hex, 16).to_bytes(4, "little"))
            net = ipaddress.IPv4Network(f"{dest}/{mask}", strict=False)
        except ValueError:
            continue
        if net.prefixlen == 0:
            continue
        out.append((iface, net))
    return out


def subnet_overlaps(
    subnet: str, routes: list[tuple[str, ipaddress.IPv4Network]], own_bridge: str | None = None
) -> str | None:
    net = ipaddress.ip_network(subnet)
    for iface, route in routes:
        if iface == own_bridge:
            continue
        if net.version == route.version and net.overlaps(route):
            return f"{route} on {iface}"
    return None


def port_free(host: str, port: int) -> bool:
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def host_problems(loaded: LoadedRecipe, routes=None) -> list[Problem]:
    recipe = loaded.recipe
    file = loaded.source
    out: list[Problem] = []
    if isinstance(recipe, KataRecipe):
        cni = recipe.answers.cni
        clash = subnet_overlaps(cni.subnet, ipv4_routes() if routes is None else routes, own_bridge=cni.bridge)
        if clash:
            out.append(
                Problem(
                    file,
                    None,
                    "answers.cni.subnet",
                    f"{cni.subnet} overlaps an existing route ({clash}); pick another private range",
                )
            )
    if isinstance(recipe, CaiRecipe):
        tng = recipe.answers.tng
        if not port_free(tng.proxy_host, tng.proxy_port):
            out.append(
                Problem(
                    file,
                    None,
                    "answers.tng.proxy_port",
                    f"{tng.proxy_host}:{tng.proxy_port} is already in use here; stop what listens there or choose another port",
                )
            )
    return out


# field path -> (min bytes, max bytes, what) for secrets with documented lengths
SECRET_LIMITS = {"answers.model.sam.key": (4, 128, "Sam key")}


def iter_secret_refs(model, prefix: str = ""):
    """(dotted path, SecretRef) for every secret reference set in a recipe."""
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if isinstance(value, SecretRef):
            yield path, value
        elif hasattr(type(value), "model_fields"):
            yield from iter_secret_refs(value, path + ".")


def secret_problems(loaded: LoadedRecipe) -> list[Problem]:
    file = loaded.source
    out: list[Problem] = []
    for path, ref in iter_secret_refs(loaded.recipe):
        if ref.scheme == "prompt":
            continue
        lo, hi, what = SECRET_LIMITS.get(path, (None, None, "value"))
        try:
            resolve_secret(ref, field=path, min_bytes=lo, max_bytes=hi, what=what)
        except SecretUnavailable as e:
            out.append(Problem(file, None, "", str(e)))
            continue
        if ref.scheme == "file":
            warning = file_mode_warning(Path(ref.target).expanduser())
            if warning:
                out.append(Problem(file, None, path, warning))
    return out
