"""Consistent pseudonyms for host names and IP addresses (``cai-tui bundle --pseudonymize``).

The scheme (documented in the bundle's README too):

* IPv4 addresses → ``10.0.0.1``, ``10.0.0.2``, … in order of first appearance (``10.X.Y.Z`` counting on past 254);
* IPv6 addresses → ``fd00::1``, ``fd00::2``, … (a unique-local prefix);
* host names → ``host-1``, ``host-2``, …: those the recipe names (targets, URLs, endpoints), those the collectors
  learn (the target's ``uname -n``), and anything under a cloud domain (``*.aliyuncs.com``, ``*.aliyuncsslb.com``,
  ``*.aliyun.com``, ``*.alibabacloud.com``, ``*.aliyuncs.com.cn``).

Kept as they are: loopback (``127.0.0.0/8``, ``::1``, ``localhost``), unspecified (``0.0.0.0``, ``::``), netmask-like
and broadcast addresses (``255.…``). The same original always gets the same pseudonym within one bundle; the mapping
is written to a separate file beside the bundle (mode 0600), never into it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
IPV6_RE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{0,4}|(?:\d{1,3}\.){3}\d{1,3})(?![\w:])")
CLOUD_HOST_RE = re.compile(
    r"(?i)(?<![\w.\-])(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+"
    r"(?:aliyuncs\.com\.cn|aliyuncs\.com|aliyuncsslb\.com|aliyun\.com|alibabacloud\.com)(?![\w\-])"
)
KEPT_HOSTS = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}


class Pseudonymizer:
    def __init__(self, hosts: Iterable[str] = ()) -> None:
        self.ipv4: dict[str, str] = {}
        self.ipv6: dict[str, str] = {}
        self.hosts: dict[str, str] = {}
        self._known_hosts: set[str] = set()
        self._host_re: re.Pattern[str] | None = None
        for h in hosts:
            self.add_host(h)

    @property
    def count(self) -> int:
        return len(self.ipv4) + len(self.ipv6) + len(self.hosts)

    def mapping(self) -> dict[str, dict[str, str]]:
        return {"ipv4": dict(self.ipv4), "ipv6": dict(self.ipv6), "hosts": dict(self.hosts)}

    def add_host(self, host: str) -> None:
        """A name to replace wherever it appears (an IP address is registered as such)."""
        host = host.strip().strip("[]").rstrip(".")
        if not host or host.lower() in KEPT_HOSTS:
            return
        try:
            ipaddress.ip_address(host)
            self._ip(host)
            return
        except ValueError:
            pass
        if host.lower() not in self._known_hosts:
            self._known_hosts.add(host.lower())
            names = sorted(self._known_hosts, key=len, reverse=True)
            self._host_re = re.compile(
                r"(?i)(?<![\w.\-])(?:" + "|".join(re.escape(n) for n in names) + r")(?![\w\-]|\.[\w\-])"
            )

    # -- replacement

    def _host(self, name: str) -> str:
        key = name.lower().rstrip(".")
        if key not in self.hosts:
            self.hosts[key] = f"host-{len(self.hosts) + 1}"
        return self.hosts[key]

    def _ip(self, text: str) -> str:
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return text
        if addr.is_loopback or addr.is_unspecified:
            return text
        if isinstance(addr, ipaddress.IPv4Address):
            if text.startswith("255.") or text.startswith("0."):
                return text
            key = str(addr)
            if key not in self.ipv4:
                n = len(self.ipv4) + 1
                self.ipv4[key] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}" if n > 254 else f"10.0.0.{n}"
            return self.ipv4[key]
        key = str(addr)
        if key not in self.ipv6:
            self.ipv6[key] = f"fd00::{len(self.ipv6) + 1:x}"
        return self.ipv6[key]

    def apply(self, text: str) -> str:
        if self._host_re is not None:
            text = self._host_re.sub(lambda m: self._host(m.group(0)), text)
        text = CLOUD_HOST_RE.sub(lambda m: self._host(m.group(0)), text)
        text = IPV6_RE.sub(lambda m: self._ip(m.group(0)) if m.group(0).count(":") >= 2 else m.group(0), text)
        text = IPV4_RE.sub(lambda m: self._ip(m.group(0)), text)
        return text

    def apply_bytes(self, data: bytes) -> bytes:
        return self.apply(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")


def hosts_of_recipe(recipe: object) -> list[str]:
    """Host names and addresses a recipe names: its targets, URLs, endpoints and IP fields."""
    from urllib.parse import urlsplit

    out: list[str] = []

    def visit(value: object) -> None:
        fields = getattr(type(value), "model_fields", None)
        if fields is not None:
            for name in fields:
                visit(getattr(value, name))
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif isinstance(value, (str, ipaddress.IPv4Address, ipaddress.IPv6Address)):
            text = str(value).strip()
            if "://" in text:
                try:
                    host = urlsplit(text).hostname
                except ValueError:
                    host = None
                if host:
                    out.append(host)
                return
            try:
                ipaddress.ip_address(text)
                out.append(text)
                return
            except ValueError:
                pass
            m = re.fullmatch(r"([A-Za-z0-9.\-]+\.[A-Za-z]{2,}|\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?(?:/.*)?", text)
            if m and not text.startswith(("/", "~", ".")):
                out.append(m.group(1))

    visit(recipe)
    return list(dict.fromkeys(out))
