"""The lab's admin endpoint: switch faults and look at the lab while it runs (loopback only, JSON in and out).

Endpoints (``admin_url`` of the ready line, ``http://127.0.0.1:<port base + 3>`` by default)::

    GET    /                       this list
    GET    /health                 each component up or down: {"status": "ok"|"degraded", "components": {
                                   "trustee"|"oss"|"kms"|"admin": {"up", "url", "port", "faults"}}};
                                   HTTP 200 when all are up, 503 otherwise
    GET    /info                   the ready line's document (endpoints, credentials and recipe paths)
    GET    /faults                 {"active": {name: param}, "known": {name: {"component", "doc", "default_param"}}}
    POST   /faults                 {"set": {"trustee-slow": 3, "oss-skew": null}, "clear": ["kms-bad-key"]}
                                   (``"clear": "all"`` clears every fault; a set value is a number, null or true for
                                   the default parameter, or false to clear); answers like GET /faults
    DELETE /faults                 clear every fault
    GET    /faults/<name>          {"name", "on", "param", "component", "doc", "default_param"}
    PUT    /faults/<name>[?param=N]  switch one fault on (POST works too)
    DELETE /faults/<name>          switch one fault off

An unknown fault name answers 400 ``{"error": "unknown fault 'x'; known faults: …", "known": [...]}`` and changes
nothing (a POST is validated whole before anything is switched). Examples::

    curl -s http://127.0.0.1:18603/faults
    curl -s -X PUT 'http://127.0.0.1:18603/faults/trustee-slow?param=3'
    curl -s -X POST http://127.0.0.1:18603/faults -d '{"set": {"oss-access-denied": true}, "clear": ["trustee-slow"]}'
    curl -s -X DELETE http://127.0.0.1:18603/faults
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .faults import FAULTS, FaultSwitches
from .httpbase import LabHandler, LabHTTPServer

ENDPOINTS = [
    "GET /",
    "GET /health",
    "GET /info",
    "GET /faults",
    "POST /faults",
    "DELETE /faults",
    "GET /faults/<name>",
    "PUT /faults/<name>[?param=N]",
    "DELETE /faults/<name>",
]


class AdminRequestError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def known_faults() -> dict[str, dict[str, Any]]:
    return {
        name: {"component": spec.component, "doc": spec.doc, "default_param": spec.default_param}
        for name, spec in sorted(FAULTS.items())
    }


def faults_document(faults: FaultSwitches) -> dict[str, Any]:
    return {"active": dict(sorted(faults.active().items())), "known": known_faults()}


def _unknown(name: str) -> AdminRequestError:
    return AdminRequestError(
        400, f"unknown fault {name!r}; known faults: {', '.join(sorted(FAULTS))}", known=sorted(FAULTS)
    )


def _param(name: str, value: Any) -> float | None:
    """A fault parameter from JSON or a query string: a finite number ≥ 0, or None for the default."""
    if value is None or value is True:
        return None
    if isinstance(value, bool):
        raise AdminRequestError(400, f'fault {name}: false means clear; put it in "clear"')
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise AdminRequestError(400, f"fault {name}: parameter {value[:40]!r} is not a number") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise AdminRequestError(400, f"fault {name}: the parameter must be a finite number ≥ 0, or null")
    return float(value)


def apply_change(faults: FaultSwitches, doc: Any) -> None:
    """Apply ``{"set": {...}, "clear": [...]|"all"}``: validated whole first, then clears, then sets."""
    if not isinstance(doc, dict) or not set(doc) <= {"set", "clear"}:
        raise AdminRequestError(400, 'the body must be a JSON object {"set": {name: param}, "clear": [names]}')
    to_set = doc.get("set") or {}
    to_clear = doc.get("clear") or []
    if not isinstance(to_set, dict):
        raise AdminRequestError(400, '"set" must be an object {name: param|null|true|false}')
    if to_clear == "all":
        to_clear = list(faults.active())
    if not isinstance(to_clear, list) or not all(isinstance(n, str) for n in to_clear):
        raise AdminRequestError(400, '"clear" must be a list of fault names, or "all"')
    plan: list[tuple[str, bool, float | None]] = []
    for name in to_clear:
        if name not in FAULTS:
            raise _unknown(name)
        plan.append((name, False, None))
    for name, value in to_set.items():
        if name not in FAULTS:
            raise _unknown(name)
        if value is False:
            plan.append((name, False, None))
        else:
            plan.append((name, True, _param(name, value)))
    for name, on, param in plan:
        faults.set(name, on, param)


class _AlreadyAnswered(Exception):
    """The request was already answered (a bad body length): send nothing more."""


class _AdminHandler(LabHandler):
    server: AdminHTTPServer
    server_version = "cai-tui-lab-admin"

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = do_GET

    def _serve(self) -> None:
        try:
            status, doc = self._route()
        except _AlreadyAnswered:
            self.close_connection = True
            return
        except AdminRequestError as e:
            status, doc = e.status, {"error": str(e), **e.extra}
        except Exception as e:  # the admin endpoint never dies of a request
            status, doc = 500, {"error": f"internal error: {type(e).__name__}: {e}"}
        body = (json.dumps(doc, indent=1) + "\n").encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if status >= 400:  # a request body may be left unread: do not read the next request out of it
            self.close_connection = True
            headers["Connection"] = "close"
        self.send_bytes(status, body, headers)

    def _body_json(self) -> Any:
        raw = self.read_small_body()
        if raw is None:  # read_small_body answered 400/413 itself
            raise _AlreadyAnswered()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except ValueError:
            raise AdminRequestError(400, "the body is not JSON") from None

    def _method_not_allowed(self, allowed: str) -> AdminRequestError:
        return AdminRequestError(405, f"{self.command} is not allowed here; use {allowed}")

    def _route(self) -> tuple[int, Any]:
        srv = self.server
        parts = urlsplit(self.path)
        path = parts.path.rstrip("/") or "/"
        method = "GET" if self.command == "HEAD" else self.command
        if path == "/":
            if method != "GET":
                raise self._method_not_allowed("GET")
            return 200, {"service": "cai-tui lab admin", "endpoints": ENDPOINTS}
        if path == "/health":
            if method != "GET":
                raise self._method_not_allowed("GET")
            doc = srv.health()
            return (200 if doc.get("status") == "ok" else 503), doc
        if path == "/info":
            if method != "GET":
                raise self._method_not_allowed("GET")
            return 200, srv.info()
        if path == "/faults":
            if method == "GET":
                return 200, faults_document(srv.faults)
            if method == "POST":
                apply_change(srv.faults, self._body_json())
                return 200, faults_document(srv.faults)
            if method == "DELETE":
                srv.faults.clear()
                return 200, faults_document(srv.faults)
            raise self._method_not_allowed("GET, POST or DELETE")
        if path.startswith("/faults/") and path.count("/") == 2:
            name = unquote(path[len("/faults/") :])
            if name not in FAULTS:
                raise _unknown(name)
            if method in ("PUT", "POST"):
                query = parse_qs(parts.query)
                param = _param(name, query["param"][-1]) if "param" in query else None
                srv.faults.set(name, True, param)
            elif method == "DELETE":
                srv.faults.set(name, False)
            elif method != "GET":
                raise self._method_not_allowed("GET, PUT or DELETE")
            spec = FAULTS[name]
            on = srv.faults.is_on(name)
            return 200, {
                "name": name,
                "on": on,
                "param": srv.faults.param(name) if on else None,
                "component": spec.component,
                "doc": spec.doc,
                "default_param": spec.default_param,
            }
        raise AdminRequestError(404, f"no such endpoint {parts.path[:200]!r}", endpoints=ENDPOINTS)


class AdminHTTPServer(LabHTTPServer):
    def __init__(
        self,
        faults: FaultSwitches,
        health: Callable[[], dict[str, Any]],
        info: Callable[[], dict[str, Any]],
        port: int = 0,
    ) -> None:
        self.faults = faults
        self.health = health
        self.info = info
        super().__init__(_AdminHandler, port)

    @property
    def url(self) -> str:
        return self.base_url
