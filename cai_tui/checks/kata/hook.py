"""kata.hook: the OCI prestart hook inside the guest rootfs."""

from __future__ import annotations

import asyncio
import os
import posixpath
import re
import shutil
import stat
from typing import TYPE_CHECKING, Any

from ...targets.base import Target
from ...targets.local import LocalTarget
from ...targets.sysroot import SysrootTarget
from ..base import CheckContext, Evidence, Result
from ..common import ev, expand_path, make
from ..registry import check
from ._common import FLOW, _host, _listdir, _read, _read_text, _run, kata_answers

if TYPE_CHECKING:
    from ...recipe.kata import KataAnswers

HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


# --------------------------------------------------------------------------------------------- kata.hook


class _Rootfs:
    """The guest rootfs as files: a SysrootTarget (links resolved inside it), or a folder on a remote host."""

    def __init__(self, target: Target, prefix: str = "") -> None:
        self.target = target  # a SysrootTarget, or the host target with ``prefix`` (the mount point)
        self.prefix = prefix.rstrip("/")
        self.name = f"{target.name}:{prefix}" if prefix else target.name

    def path(self, guest_path: str) -> str:
        return f"{self.prefix}{guest_path}" if self.prefix else guest_path

    async def exists(self, guest_path: str) -> bool:
        return await self.target.exists(self.path(guest_path))

    async def read(self, guest_path: str, max_bytes: int) -> tuple[bytes | None, str]:
        return await _read(self.target, self.path(guest_path), max_bytes)

    async def mode(self, ctx: CheckContext, guest_path: str) -> int | None:
        t = self.target
        if isinstance(t, SysrootTarget):
            return await asyncio.to_thread(lambda: os.stat(t.host_path(guest_path)).st_mode)
        if isinstance(t, LocalTarget):
            return await asyncio.to_thread(lambda: os.stat(self.path(guest_path)).st_mode)
        r = await _run(ctx, t, ["stat", "-L", "-c", "%f", self.path(guest_path)])
        if r is None or not r.ok:
            return None
        try:
            return int(r.stdout.strip(), 16)
        except ValueError:
            return None


class _ImageRootfs:
    """The guest rootfs read from the unmounted image with debugfs (after KATA-1.7), on this machine only."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.name = f"{image} (unmounted, read with debugfs)"

    def path(self, guest_path: str) -> str:
        return guest_path

    async def exists(self, guest_path: str) -> bool:
        from ...kata.rootfs_read import stat_in_image

        return await asyncio.to_thread(stat_in_image, self.image, guest_path) is not None

    async def read(self, guest_path: str, max_bytes: int) -> tuple[bytes | None, str]:
        from ...kata.rootfs_read import read_in_image

        data = await asyncio.to_thread(read_in_image, self.image, guest_path, max_bytes)
        return data, "" if data is not None else "debugfs cannot dump it"

    async def mode(self, ctx: CheckContext, guest_path: str) -> int | None:
        from ...kata.rootfs_read import stat_in_image

        st = await asyncio.to_thread(stat_in_image, self.image, guest_path)
        if st is None:
            return None
        kinds = {"regular": stat.S_IFREG, "directory": stat.S_IFDIR}
        return kinds.get(st.kind, 0) | st.mode


async def _mount_line(t: Target, mount_dir: str) -> str | None:
    for path in ("/proc/self/mounts", "/proc/mounts"):
        text, _ = await _read_text(t, path, 1024 * 1024)
        if text is None:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].replace("\\040", " ").rstrip("/") == mount_dir.rstrip("/"):
                return line.strip()
        return None
    return None


async def _guest_rootfs(
    ctx: CheckContext, host: Target, answers: KataAnswers
) -> tuple[_Rootfs | _ImageRootfs | None, list[str]]:
    """Where the guest rootfs can be read: ``rootfs.mount_dir`` on the host when it holds a tree, else a sysroot given
    to doctor that is itself a guest rootfs, else (on this machine) ``rootfs.image`` itself, unmounted, with debugfs.
    Also what was found on the way (for evidence)."""
    notes: list[str] = []
    mount_dir = await expand_path(host, answers.rootfs.mount_dir)
    entries = await _listdir(host, mount_dir)
    if entries:
        line = await _mount_line(host, mount_dir)
        notes.append(f"mounted: {line}" if line else f"{mount_dir} is not a mount point; read as it is")
        if isinstance(host, SysrootTarget):
            return _Rootfs(SysrootTarget(host.host_path(mount_dir))), notes
        if isinstance(host, LocalTarget):
            return _Rootfs(SysrootTarget(mount_dir)), notes
        notes.append("absolute links inside the rootfs resolve on the host (read over the host target)")
        return _Rootfs(host, mount_dir), notes
    notes.append(f"{mount_dir}: {'empty (rootfs.img not mounted)' if entries == [] else 'absent'}")
    if ctx.sysroot and os.path.isdir(ctx.sysroot):
        guest = SysrootTarget(ctx.sysroot)
        if await guest.exists(answers.kata.guest_hook_path):
            notes.append(f"--sysroot {ctx.sysroot} holds {answers.kata.guest_hook_path}: read as the guest rootfs")
            return _Rootfs(guest), notes
    image = answers.rootfs.image
    if isinstance(host, LocalTarget) and shutil.which("debugfs") and os.path.isfile(image):
        notes.append(f"read {image} itself with debugfs (not mounted)")
        return _ImageRootfs(image), notes
    return None, notes


_TOOLKIT = re.compile(r"(?P<cmd>\S*nvidia-container-toolkit)(?:\s|$)")


@check(
    "kata.hook",
    "The OCI prestart hook is in the guest rootfs and executable",
    stage="guest-driver",
    flows=FLOW,
    runs_on="host",
)
async def kata_hook(ctx: CheckContext) -> Result:
    host = _host(ctx)
    answers, origin = kata_answers(ctx)
    hook = answers.driver.hook_path
    hook_root = answers.kata.guest_hook_path.rstrip("/")
    rootfs, notes = await _guest_rootfs(ctx, host, answers)
    evidence = [ev(ctx, "; ".join(notes), f"guest rootfs ({origin}: rootfs.mount_dir)", host.name)]
    if rootfs is None:
        return make(
            ctx,
            "unknown",
            f"the guest rootfs is not readable: {notes[-1]}",
            evidence,
            (
                "kata-hook-missing",
                f"Mount the image first (`mount {answers.rootfs.image} {answers.rootfs.mount_dir}`) or give the "
                "mounted rootfs with --sysroot, then run the check again; unmount before starting containers.",
            ),
        )
    where = rootfs.name
    data: dict[str, Any] = {"rootfs": where, "hook": hook}

    def fail(summary: str, text: str, *more: Evidence) -> Result:
        return make(ctx, "fail", summary, [*evidence, *more], ("kata-hook-missing", text), **data)

    if not await rootfs.exists(hook):
        return fail(
            f"{hook} is not in the guest rootfs ({where})",
            f"Add the hook (KATA-1.6) inside the rootfs: `mkdir -p {posixpath.dirname(hook)}`, write "
            f"`#!/bin/bash -x` and `/usr/bin/nvidia-container-toolkit -debug $@` into {hook}, `chmod +x {hook}`; "
            "without it nvidia-smi is missing in the container.",
            ev(ctx, "(absent)", rootfs.path(hook), where),
        )
    mode = await rootfs.mode(ctx, hook)
    data["mode"] = f"{stat.S_IMODE(mode):04o}" if mode is not None else None
    if mode is not None and not stat.S_ISREG(mode):
        return fail(f"{hook} is not a regular file", f"Replace {hook} with the hook script.")
    mode_ev = ev(ctx, f"mode {data['mode']}" if mode is not None else "mode unknown", f"stat {hook}", where)
    if mode is not None and not mode & 0o111:
        return fail(
            f"{hook} is not executable (mode {data['mode']}): kata's agent skips it",
            f"`chmod +x {rootfs.path(hook)}` (KATA-1.6): the agent runs only executable files under "
            f"{hook_root}/prestart.",
            mode_ev,
        )
    raw, why = await rootfs.read(hook, 64 * 1024)
    if raw is None:
        return make(ctx, "unknown", f"{hook} cannot be read: {why}", [*evidence, mode_ev], **data)
    text = raw.decode("utf-8", "replace")
    first = text.split("\n", 1)[0]
    shebang_ev = ev(ctx, repr(first) if "\r" in first else first, f"line 1 of {hook}", where)
    if not first.startswith("#!"):
        return fail(
            f"{hook} has no shebang line (line 1: {first[:80]!r})",
            f"Make line 1 of {hook} `#!/bin/bash -x` (the seed's hook): the agent executes the file directly.",
            mode_ev,
            shebang_ev,
        )
    if "\r" in text:
        return fail(
            f"{hook} has CRLF line endings: the kernel looks for the interpreter {first[2:].strip()!r} with a \\r",
            f"Convert it: `sed -i 's/\\r$//' {rootfs.path(hook)}` (it was edited on Windows).",
            mode_ev,
            shebang_ev,
        )
    interpreter = first[2:].strip().split()[0] if first[2:].strip() else ""
    if not interpreter or not await rootfs.exists(interpreter):
        return fail(
            f"the hook's interpreter {interpreter or '(none)'} is not in the guest rootfs",
            f"Install it into the rootfs (`dnf --installroot={answers.rootfs.mount_dir} install bash`) or change "
            f"line 1 of {hook}.",
            mode_ev,
            shebang_ev,
        )
    body = [ln.strip() for ln in text.splitlines()[1:] if ln.strip() and not ln.strip().startswith("#")]
    call = next((m for m in (_TOOLKIT.search(ln) for ln in body) if m), None)
    call_line = next((ln for ln in body if _TOOLKIT.search(ln)), "")
    if call is None:
        return fail(
            f"{hook} does not call nvidia-container-toolkit",
            f"The hook must run the toolkit: add `/usr/bin/nvidia-container-toolkit -debug $@` to {hook} (KATA-1.6).",
            mode_ev,
            shebang_ev,
            ev(ctx, "\n".join(body[:6]) or "(no commands)", hook, where),
        )
    call_ev = ev(ctx, call_line, hook, where)
    tool = call["cmd"]
    tool_found = await rootfs.exists(tool) if tool.startswith("/") else False
    if not tool.startswith("/"):
        for d in ("/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin", "/sbin"):
            if await rootfs.exists(f"{d}/{tool}"):
                tool, tool_found = f"{d}/{tool}", True
                break
    if not tool_found:
        return fail(
            f"{hook} calls {call['cmd']}, which is not in the guest rootfs",
            f"Install nvidia-container-toolkit into the rootfs (KATA-1.1): `dnf --installroot="
            f"{answers.rootfs.mount_dir} install nvidia-container-toolkit -y`.",
            mode_ev,
            call_ev,
        )
    kind = posixpath.basename(posixpath.dirname(hook))
    if posixpath.dirname(posixpath.dirname(hook)) != hook_root or kind not in HOOK_KINDS:
        return fail(
            f"{hook} is not in {hook_root}/prestart/, where kata's agent looks",
            f"Move it to {hook_root}/prestart/{posixpath.basename(hook)} (hooks sit in "
            "<guest_hook_path>/{prestart,poststart,poststop}).",
            mode_ev,
        )
    return make(
        ctx,
        "pass",
        f"{hook} in {where}: mode {data['mode']}, {first.strip()}, calls {tool}",
        [*evidence, mode_ev, shebang_ev, call_ev],
        **data,
    )
