"""``docker version`` (JSON from ``--format '{{json .}}'`` or the plain text) and ``docker compose version``.

Plain text (Docker Engine - Community; Debian's docker.io prints ``Client:``/``Server:`` without a platform name)::

    Client: Docker Engine - Community
     Version:           24.0.5
     API version:       1.43
    …
    Server: Docker Engine - Community
     Engine:
      Version:          24.0.5
      API version:      1.43 (minimum version 1.12)

Without a reachable daemon the client part is followed by ``Cannot connect to the Docker daemon at …`` (or
``permission denied while trying to connect to the Docker daemon socket …``) and there is no server part.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any

from cai_tui.parsers.errors import ParseError, at_line, nothing_found, numbered, quote

_VERSION = re.compile(r"^v?(?P<nums>\d{1,9}(?:\.\d{1,9}){0,3})(?P<rest>(?:[-+~_a-zA-Z]|\.[a-zA-Z])[-+~._a-zA-Z0-9]*)?$")
_NOT_FOUND = re.compile(
    r"docker(?:-compose)?['\"]?:\s*(?:command\s+)?not found|'compose' is not a docker command", re.I
)


def version_tuple(version: str) -> tuple[int, ...]:
    """``"20.10.24+dfsg1"`` → (20, 10, 24); ``"v2.29.1"`` → (2, 29, 1); ``"19.03"`` → (19, 3); ``"1.0.0-rc92"`` → (1, 0, 0)."""
    m = _VERSION.match(version.strip())
    if not m:
        raise ParseError(f"not a version number: {quote(version)}", line_no=1, line=version)
    return tuple(int(part) for part in m["nums"].split("."))


def _padded(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    width = max(len(a), len(b))
    return a + (0,) * (width - len(a)), b + (0,) * (width - len(b))


def version_newer_than(version: str, than: str) -> bool:
    """Strictly newer: ``version_newer_than("20.10.24+dfsg1", "19.03")`` is True; ``"19.03.0"`` vs ``"19.03"`` is False."""
    a, b = _padded(version_tuple(version), version_tuple(than))
    return a > b


def version_at_least(version: str, minimum: str) -> bool:
    a, b = _padded(version_tuple(version), version_tuple(minimum))
    return a >= b


@dataclass(frozen=True)
class DockerVersion:
    client_version: str | None
    client_api_version: str | None
    client_platform: str | None  # "Docker Engine - Community", None for Debian's docker.io
    server_version: str | None  # None: no daemon reached (see server_error)
    server_api_version: str | None
    server_min_api_version: str | None
    server_platform: str | None
    server_error: str | None = None  # "Cannot connect to the Docker daemon at …" as printed

    @property
    def engine_version(self) -> str | None:
        """The daemon's version when reached, else the client's."""
        return self.server_version or self.client_version

    def newer_than(self, than: str) -> bool:
        """The engine (server, else client) is strictly newer than ``than`` (the virtCCA guide asks for > 19.03)."""
        version = self.engine_version
        return version is not None and version_newer_than(version, than)


_SERVER_ERRORS = re.compile(
    r"^(?:Cannot connect to the Docker daemon.*|.*permission denied while trying to connect to the Docker daemon.*"
    r"|Error response from daemon:.*|error during connect:.*)$",
    re.I,
)


def _api(value: str | None) -> tuple[str | None, str | None]:
    """``"1.43 (minimum version 1.12)"`` → ("1.43", "1.12"); ``"1.41 (downgraded from 1.42)"`` → ("1.41", None)."""
    if not value:
        return None, None
    m = re.match(r"^(?P<api>\S+)(?:\s+\(minimum version (?P<min>[^)\s]+)\))?", value)
    return (m["api"], m["min"]) if m else (value, None)


def _get(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _opt_str(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ParseError(f"docker version JSON: {what} is not a string: {value!r:.80}")
    return value


def _parse_json(text: str) -> DockerVersion:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ParseError(f"docker version: not valid JSON ({e})") from None
    if not isinstance(data, dict) or not isinstance(data.get("Client"), dict):
        raise ParseError("docker version JSON: expected an object with a 'Client' object")
    client = data["Client"]
    server = data.get("Server")
    if server is not None and not isinstance(server, dict):
        raise ParseError("docker version JSON: 'Server' is neither an object nor null")
    server_min = _opt_str(_get(server, "MinAPIVersion"), "Server.MinAPIVersion")
    if server_min is None and server is not None:
        for component in server.get("Components") or []:
            if isinstance(component, dict) and component.get("Name") == "Engine":
                server_min = _opt_str(_get(component, "Details", "MinAPIVersion"), "Engine MinAPIVersion")
    return DockerVersion(
        client_version=_opt_str(client.get("Version"), "Client.Version"),
        client_api_version=_opt_str(client.get("ApiVersion"), "Client.ApiVersion"),
        client_platform=_opt_str(_get(client, "Platform", "Name"), "Client.Platform.Name"),
        server_version=_opt_str(_get(server, "Version"), "Server.Version"),
        server_api_version=_opt_str(_get(server, "ApiVersion"), "Server.ApiVersion"),
        server_min_api_version=server_min,
        server_platform=_opt_str(_get(server, "Platform", "Name"), "Server.Platform.Name"),
    )


_SECTION = re.compile(r"^(?P<name>Client|Server)(?::\s*(?P<platform>.*?))?\s*$")
_FIELD = re.compile(r"^(?P<indent>\s*)(?P<key>[A-Za-z][A-Za-z0-9 /._-]*?):\s*(?P<value>.*?)\s*$")


def _parse_plain(text: str) -> DockerVersion:
    section: str | None = None
    component: str | None = None
    platforms: dict[str, str | None] = {}
    values: dict[tuple[str, str | None, str], str] = {}
    server_error: str | None = None
    for n, line in numbered(text):
        if not line.strip():
            continue
        m = _SECTION.match(line)
        if m:
            section, component = m["name"], None
            platforms[section] = m["platform"] or None
            continue
        if _SERVER_ERRORS.match(line.strip()):
            server_error = line.strip()
            section = None
            continue
        f = _FIELD.match(line)
        if f and section is not None:
            key, value = f["key"].strip().lower(), f["value"]
            if section == "Server" and not value:  # " Engine:", " containerd:" open a component of the server part
                component = key
            elif section == "Server" and len(f["indent"]) <= 1:
                component = None
                values[(section, component, key)] = value
            else:
                values[(section, component if section == "Server" else None, key)] = value
            continue
        if _NOT_FOUND.search(line):
            raise at_line("docker is not installed (command not found)", n, line)
        raise at_line("expected 'docker version' output ('Client:' / 'Server:' sections)", n, line)
    if "Client" not in platforms and "Server" not in platforms:
        raise nothing_found("expected 'docker version' output ('Client:' section)", text)
    client_api, _ = _api(values.get(("Client", None, "api version")))
    server_api, server_min = _api(
        values.get(("Server", "engine", "api version")) or values.get(("Server", None, "api version"))
    )
    return DockerVersion(
        client_version=values.get(("Client", None, "version")),
        client_api_version=client_api,
        client_platform=platforms.get("Client"),
        server_version=values.get(("Server", "engine", "version")) or values.get(("Server", None, "version")),
        server_api_version=server_api,
        server_min_api_version=server_min,
        server_platform=platforms.get("Server"),
        server_error=server_error,
    )


def parse_docker_version(text: str) -> DockerVersion:
    """``docker version --format '{{json .}}'`` (JSON) or plain ``docker version`` → versions of client and server."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("{")), None)
    if start is None:
        return _parse_plain(text)
    # JSON on stdout; without a daemon the client also prints the error (stderr) and "Server" is null.
    try:
        json.loads(lines[start])
        body, others = lines[start], [*lines[:start], *lines[start + 1 :]]
    except (ValueError, RecursionError):
        body, others = "\n".join(lines[start:]), lines[:start]
    errors: list[str] = []
    for n, line in enumerate(others, 1):
        if not line.strip():
            continue
        if not _SERVER_ERRORS.match(line.strip()):
            raise at_line("unexpected line next to the docker version JSON", n if n <= start else n + 1, line)
        errors.append(line.strip())
    result = _parse_json(body)
    return replace(result, server_error=errors[0]) if errors else result


# --- compose -------------------------------------------------------------------------------------------------------
_COMPOSE_V2 = re.compile(r"^Docker Compose version (?P<version>v?\d\S*)\s*$", re.I)
_COMPOSE_V1 = re.compile(
    r"^docker-compose version:?\s+(?P<version>v?\d[^,\s]*)(?:,\s*build\s+(?P<build>\S+))?\s*$", re.I
)
_SHORT = re.compile(r"^v?\d+\.\d+\S*$")
_V1_EXTRA = re.compile(r"^(?:docker-py|CPython|OpenSSL) version:?\s", re.I)


@dataclass(frozen=True)
class ComposeVersion:
    version: str  # as printed, without a leading "v": "2.29.1", "1.29.2"
    build: str | None  # v1 only: "5becea4c"
    v1: bool  # the Python docker-compose (1.x)

    @property
    def major(self) -> int:
        return version_tuple(self.version)[0]

    @property
    def supports_include(self) -> bool:
        """The top-level ``include:`` element needs Compose ≥ 2.20."""
        return version_at_least(self.version, "2.20")


def parse_compose_version(text: str) -> ComposeVersion:
    """``Docker Compose version v2.29.1`` (plugin), ``docker-compose version 1.29.2, build 5becea4c`` (v1, with its
    docker-py/CPython/OpenSSL lines), or ``docker compose version --short`` (``2.29.1``)."""
    found: ComposeVersion | None = None
    for n, line in numbered(text):
        stripped = line.strip()
        if not stripped:
            continue
        if found is not None:
            if found.v1 and _V1_EXTRA.match(stripped):
                continue
            raise at_line("unexpected line after the compose version", n, line)
        m = _COMPOSE_V2.match(stripped) or _COMPOSE_V1.match(stripped)
        if m is None and _SHORT.match(stripped):
            m = re.match(r"^(?P<version>.*)$", stripped)
        if m is None and _NOT_FOUND.search(stripped):
            raise at_line("Docker Compose is not installed", n, line)
        if m is None:
            raise at_line("expected 'Docker Compose version v2.x' or 'docker-compose version 1.x, build …'", n, line)
        version = m["version"].removeprefix("v")
        version_tuple(version)  # must be a version number
        groups = m.groupdict()
        v1 = stripped.lower().startswith("docker-compose") or version_tuple(version)[0] < 2
        found = ComposeVersion(version=version, build=groups.get("build"), v1=v1)
    if found is None:
        raise nothing_found("expected 'docker compose version' output", text)
    return found


def compose_supports_include(version: ComposeVersion | str) -> bool:
    """Compose ≥ 2.20 (top-level ``include:``); accepts a :class:`ComposeVersion` or the command's output."""
    parsed = version if isinstance(version, ComposeVersion) else parse_compose_version(version)
    return parsed.supports_include
