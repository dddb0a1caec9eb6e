"""What a host name says about where traffic goes, for every client and check: loopback traffic never goes through a
proxy, and the lab's loopback services speak plain HTTP."""

from __future__ import annotations

import ipaddress


def is_loopback_host(host: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761), ``localhost.localdomain`` or a loopback address, bracketed or not."""
    host = host.strip("[]").lower()
    if host in ("localhost", "localhost.localdomain") or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
