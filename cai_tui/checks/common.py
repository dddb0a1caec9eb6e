"""Helpers shared by the Trustee, OSS, KMS and model checks: recipe access, redacted results, DNS/TCP probes.

Every string that leaves a check passes through ``ctx.redactor`` (:func:`finish`), so a secret that a client library
echoes back (an STS token inside a StringToSign, a password in an error) never reaches a report.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import posixpath
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .base import CheckContext, Evidence, Fix, Result, Status

if TYPE_CHECKING:
    from ..recipe.cai import CaiAnswers
    from ..targets.base import Target

LOCAL = "local"  # Target name of this process (network checks run from here)
RESERVED_INVALID_TLD = ".invalid"  # RFC 6761: never resolves; answered negatively without asking a DNS server


# --------------------------------------------------------------------------------------------- recipe


def cai_answers(ctx: CheckContext) -> CaiAnswers | None:
    """The ``cai`` answers of the context's recipe, or None (no recipe, or another flow)."""
    from ..recipe.model import CaiRecipe

    recipe = ctx.recipe
    return recipe.answers if isinstance(recipe, CaiRecipe) else None


def no_recipe() -> Result:
    return Result("skip", "needs a cai recipe (--recipe FILE)")


class SecretProblem(Exception):
    """A secret reference of the recipe cannot be resolved here; carries the finished result."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.summary)
        self.result = result


def secret(ctx: CheckContext, ref: Any, field_name: str) -> str:
    """Resolve a recipe secret through the context (it joins the redaction set); SecretProblem when it cannot be."""
    from ..recipe.secrets import SecretUnavailable

    try:
        return ctx.secret(ref, field_name)
    except SecretUnavailable as exc:
        raise SecretProblem(
            Result(
                "unknown",
                f"cannot check: {exc}",
                fix=Fix(
                    "recipe-secret-unavailable",
                    f"Make the secret reference of {field_name} resolvable here (create the file, export the "
                    "variable, or run interactively for `prompt`), then run the check again.",
                ),
            )
        ) from None


# --------------------------------------------------------------------------------------------- results


def ev(ctx: CheckContext, observed: str, source: str, target: str = LOCAL) -> Evidence:
    """Evidence with every known secret masked."""
    red = ctx.redactor.redact
    return Evidence(observed=red(_clip(observed)), source=red(_clip(source, 500)), target=target)


def _clip(text: str, limit: int = 2000) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _redact_data(ctx: CheckContext, value: Any) -> Any:
    if isinstance(value, str):
        return ctx.redactor.redact(value)
    if isinstance(value, dict):
        return {k: _redact_data(ctx, v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_data(ctx, v) for v in value]
    return value


def finish(ctx: CheckContext, result: Result) -> Result:
    """The result with its summary, evidence, fix and data passed through the redactor."""
    red = ctx.redactor.redact
    result.summary = red(result.summary)
    result.evidence = [
        Evidence(observed=red(e.observed), source=red(e.source), target=e.target, at=e.at) for e in result.evidence
    ]
    if result.fix is not None:
        result.fix = Fix(result.fix.faq_id, red(result.fix.text))
    result.data = _redact_data(ctx, result.data)
    return result


def make(
    ctx: CheckContext,
    status: Status,
    summary: str,
    evidence: Iterable[Evidence] = (),
    fix: tuple[str, str] | None = None,
    **data: Any,
) -> Result:
    return finish(ctx, Result(status, summary, list(evidence), Fix(*fix) if fix else None, dict(data)))


# --------------------------------------------------------------------------------------------- time budget


def net_timeout(ctx: CheckContext, share: float = 0.8, floor: float = 0.5) -> float:
    """Seconds one network operation may take: a share of the check's budget, so the check can still report."""
    return max(floor, float(ctx.timeout) * share)


# --------------------------------------------------------------------------------------------- network probes


def ip_literal(host: str) -> str | None:
    """``host`` as an IP address when it is one (``127.0.0.1``, ``::1``, ``[::1]``), else None."""
    try:
        return str(ipaddress.ip_address(host.strip().strip("[]")))
    except ValueError:
        return None


def resolve_timeout(ctx: CheckContext, share: float) -> float:
    """Seconds a name resolution may take: :func:`net_timeout`, never more than the check's whole budget."""
    return min(net_timeout(ctx, share), max(0.0, float(ctx.timeout)))


def is_timeout(exc: BaseException) -> bool:
    return isinstance(exc, (asyncio.TimeoutError, TimeoutError, socket.timeout))


def timed_out(ctx: CheckContext, what: str, seconds: float, evidence: Iterable[Evidence] = (), **data: Any) -> Result:
    """``unknown``, never a failure: a step that ran out of its deadline (a machine under load, a slow resolver) says
    nothing about the value checked, so no fix is offered for it (as the runner's own timeout)."""
    return make(ctx, "unknown", f"{what}: timed out after {seconds:g} s", evidence, **data)


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses ``host`` resolves to; ``socket.gaierror`` when it does not, TimeoutError when DNS hangs.

    An IP literal is its own address: no resolver is asked (and no deadline applies). Names in the reserved
    ``.invalid`` TLD are answered negatively here without asking a resolver (RFC 6761 §6.4).
    """
    literal = ip_literal(host)
    if literal is not None:
        return [literal]
    name = host.strip("[]").rstrip(".").lower()
    if name == "invalid" or name.endswith(RESERVED_INVALID_TLD):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (reserved .invalid name)")
    loop = asyncio.get_running_loop()
    infos = await asyncio.wait_for(loop.getaddrinfo(name, port, type=socket.SOCK_STREAM), timeout)
    out: list[str] = []
    for info in infos:
        addr = str(info[4][0])
        if addr not in out:
            out.append(addr)
    return out


async def tcp_connect(host: str, port: int, timeout: float) -> float:
    """Open and close a TCP connection; seconds it took. OSError (refused, unreachable) or TimeoutError."""
    t0 = time.monotonic()
    _reader, writer = await asyncio.wait_for(asyncio.open_connection(host.strip("[]"), port), timeout)
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 1.0)
    except (OSError, asyncio.TimeoutError):
        pass
    return time.monotonic() - t0


def describe_os_error(exc: BaseException) -> str:
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, socket.timeout)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return f"DNS: {exc.strerror or exc}"
    strerror = getattr(exc, "strerror", None)
    return str(strerror or exc or type(exc).__name__)


# --------------------------------------------------------------------------------------------- targets


async def expand_path(target: Target, path: str) -> str:
    """``~`` expanded as the target sees it (this process's home for the local target, ``$HOME`` elsewhere)."""
    if not path.startswith("~"):
        return path
    if target.name == LOCAL:
        return os.path.expanduser(path)
    if target.name.startswith("sysroot:"):  # a guest tree: its root user's home, as the guest would see it
        rest = path[1:].lstrip("/")
        return posixpath.join("/root", rest) if rest else "/root"
    res = await target.run(["sh", "-c", 'printf %s "$HOME"'], timeout=10)
    home = res.stdout.strip() if res.ok else ""
    if not home:
        return path
    rest = path[1:].lstrip("/")
    return posixpath.join(home, rest) if rest else home


def join(*parts: str) -> str:
    return posixpath.join(*parts)


async def du_kib(target: Target, path: str, timeout: float) -> int | None:
    """Disk usage of ``path`` in KiB (``du -sk``), None when it cannot be measured."""
    res = await target.run(["du", "-sk", path], timeout=timeout)
    if not res.ok and not res.stdout.strip():
        return None
    first = res.stdout.strip().splitlines()[-1:] if res.stdout.strip() else []
    try:
        return int(first[0].split()[0]) if first else None
    except (ValueError, IndexError):
        return None


@dataclass(frozen=True)
class DfLine:
    filesystem: str
    total_kib: int
    used_kib: int
    avail_kib: int
    mount: str
    raw: str


async def df(target: Target, path: str, timeout: float) -> tuple[DfLine | None, str]:
    """``df -Pk PATH`` parsed (POSIX output: one header, one line); ``(None, why)`` when it fails."""
    res = await target.run(["df", "-Pk", path], timeout=timeout)
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    if not res.ok or len(lines) < 2:
        why = (res.stderr.strip() or res.stdout.strip() or f"exit {res.rc}").splitlines()[-1:]
        return None, why[0] if why else f"exit {res.rc}"
    raw = lines[-1]
    parts = raw.split()
    try:
        total, used, avail = int(parts[-5]), int(parts[-4]), int(parts[-3])
    except (ValueError, IndexError):
        return None, f"unexpected df output: {raw}"
    return DfLine(" ".join(parts[:-5]), total, used, avail, parts[-1], raw), ""


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover
