"""Helpers the kata-virtcca checks share: the recipe's answers, reading the host target, the kernel release."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from ...targets.base import CommandResult, Target
from ...targets.sysroot import SysrootTarget
from ..base import CheckContext, Status

if TYPE_CHECKING:
    from ...recipe.kata import KataAnswers


FLOW = ("kata-virtcca",)
RELEASE_FILE = "/proc/sys/kernel/osrelease"  # = uname -r


def kata_answers(ctx: CheckContext) -> tuple[KataAnswers, str]:
    """The recipe's kata answers, or the seed's defaults (and where they came from, for evidence)."""
    from ...recipe.kata import KataAnswers
    from ...recipe.model import KataRecipe

    if isinstance(ctx.recipe, KataRecipe):
        return ctx.recipe.answers, "recipe answers"
    return KataAnswers(), "the seed's defaults (no kata-virtcca recipe given)"


def _host(ctx: CheckContext) -> Target:
    t = ctx.target("host")
    if t is None:  # pragma: no cover - the runner skips checks whose target is absent
        raise RuntimeError("no host target")
    return t


def _pci_host(ctx: CheckContext) -> Target:
    """The host, with /sys and /dev read under ``answers.gpu.sysroot`` when the recipe sets it (what the vfio doer
    writes: the kata lab's fake sysfs tree); commands still run on the host. A target that is already a sysroot
    (``--sysroot``, a capture) is kept: it says where the files are."""
    t = _host(ctx)
    answers, _ = kata_answers(ctx)
    root = answers.gpu.sysroot
    if root is None or isinstance(t, SysrootTarget):
        return t
    return SysrootTarget(str(root), inner=t)


def _budget(ctx: CheckContext) -> float:
    return max(1.0, float(ctx.timeout) * 0.8)


def _can_run(t: Target) -> bool:
    return not (isinstance(t, SysrootTarget) and t.inner is None)


async def _run(ctx: CheckContext, t: Target, argv: list[str]) -> CommandResult | None:
    """The command's result; None when the target only gives file access (a sysroot without a machine)."""
    if not _can_run(t):
        return None
    return await t.run(argv, timeout=_budget(ctx))


async def _read(t: Target, path: str, max_bytes: int = 4 * 1024 * 1024) -> tuple[bytes | None, str]:
    """(content, "") or (None, why it could not be read)."""
    try:
        return await t.read_file(path, max_bytes=max_bytes), ""
    except FileNotFoundError:
        return None, "absent"
    except IsADirectoryError:
        return None, "a directory, not a file"
    except PermissionError:
        return None, "permission denied"
    except OSError as e:
        return None, e.strerror or str(e)


async def _read_text(t: Target, path: str, max_bytes: int = 4 * 1024 * 1024) -> tuple[str | None, str]:
    data, why = await _read(t, path, max_bytes)
    return (data.decode("utf-8", "replace"), "") if data is not None else (None, why)


async def _listdir(t: Target, path: str) -> list[str] | None:
    try:
        return await t.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError:
        return None


async def _readlink(t: Target, path: str) -> str | None:
    """The link's text; None when there is no such link."""
    try:
        return await t.readlink(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


def _first_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[0].strip() if lines else ""


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else ""


async def _kernel_value(ctx: CheckContext, t: Target, flag: str, file: str) -> tuple[str | None, str]:
    """``uname <flag>`` on a machine, the /proc/sys file on a sysroot (or when uname fails): (value, source)."""
    if not isinstance(t, SysrootTarget):
        r = await _run(ctx, t, ["uname", flag])
        if r is not None and r.ok and r.stdout.strip():
            return r.stdout.strip(), f"uname {flag}"
    text, why = await _read_text(t, file, 4096)
    if text is not None and text.strip():
        return text.strip(), file
    return None, f"{file}: {why or 'empty'}"


async def _kernel_release(ctx: CheckContext, t: Target) -> tuple[str | None, str]:
    return await _kernel_value(ctx, t, "-r", RELEASE_FILE)


def _worst(statuses: Iterable[Status]) -> Status:
    order: tuple[Status, ...] = ("fail", "unknown", "warn", "pass", "skip")
    found = set(statuses)
    return next((s for s in order if s in found), "pass")


def _listing(entries: list[str] | None, limit: int = 12) -> str:
    if entries is None:
        return "(absent)"
    if not entries:
        return "(empty)"
    return " ".join(entries[:limit]) + (f" … ({len(entries)} in all)" if len(entries) > limit else "")
