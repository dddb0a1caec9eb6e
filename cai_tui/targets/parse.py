"""Target URIs as users type them (``--target``), to Target objects. Nothing connects until first use."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .base import Target

FORMS = (
    "local",
    "ssh://[USER@]HOST[:PORT]  (HOST may be an alias from ~/.ssh/config)",
    "docker://CONTAINER[?host=ENGINE_URL]",
    "ctr://[NAMESPACE/]TASK[?address=CONTAINERD_SOCKET]  (namespace k8s.io when not given)",
    "sysroot:PATH  (a mounted guest rootfs or a captured machine; file checks only)",
)


def _bad(text: str, why: str = "") -> ValueError:
    forms = "\n  ".join(FORMS)
    return ValueError(f"not a target: {text!r}{f' ({why})' if why else ''}; accepted forms:\n  {forms}")


def target_from_uri(text: str, **ssh_options: Any) -> Target:
    """``local``, ``ssh://…``, ``docker://…``, ``ctr://…`` or ``sysroot:PATH`` → a Target.

    ``ssh_options`` go to :class:`~cai_tui.targets.ssh.SshTarget` (known_hosts, identity_file, accept_new_host_key…).
    """
    text = text.strip()
    if text == "local":
        from .local import LocalTarget

        return LocalTarget()
    if text.startswith("sysroot:"):
        from .sysroot import SysrootTarget

        path = os.path.expanduser(text.removeprefix("sysroot:"))
        if not path:
            raise _bad(text, "no path after sysroot:")
        if not os.path.isdir(path):
            raise ValueError(
                f"sysroot:{path}: not a directory (mount the guest rootfs or unpack the capture there first)"
            )
        return SysrootTarget(path)
    scheme = text.split("://", 1)[0] if "://" in text else ""
    if scheme == "ssh":
        from .ssh import SshTarget

        try:
            return SshTarget(text, **ssh_options)
        except ValueError as e:
            raise _bad(text, str(e)) from None
    if scheme == "docker":
        from .container import DockerExecTarget

        parts = urlsplit(text)
        query = parse_qs(parts.query)
        if not parts.netloc or parts.path.strip("/") or set(query) - {"host"} or parts.fragment:
            raise _bad(text, "docker://CONTAINER with an optional ?host=ENGINE_URL")
        return DockerExecTarget(parts.netloc, docker_url=query["host"][0] if "host" in query else None)
    if scheme == "ctr":
        from .container import CtrTarget, split_ctr_uri

        try:
            task, namespace, address = split_ctr_uri(text)
        except ValueError as e:
            raise _bad(text, str(e)) from None
        return CtrTarget(task, namespace=namespace or "k8s.io", address=address)
    raise _bad(text)
