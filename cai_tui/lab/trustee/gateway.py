"""The Alibaba ``trustee-gateway`` shape in front of the lab KBS and AS (openanolis/trustee ``trustee-gateway/``).

Routes (gin): ``/api/kbs/v0/...``, ``/api/as/...`` and its alias ``/api/attestation-service/...``,
``/api/services-health``, ``/api/health``. Unrouted paths answer gin's ``404 page not found``. When the backends are
down (fault ``gateway-backend-down``) the gateway still answers, with ``{"error": "Failed to forward request to …"}``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from cai_tui.lab.faults import FaultSwitches
from cai_tui.lab.trustee.attestation_service import AttestationService
from cai_tui.lab.trustee.errors import Reply, gateway_forward_error
from cai_tui.lab.trustee.kbs import KbsService
from cai_tui.lab.trustee.settings import ServerLog

# (method, first segment after /api/kbs/v0/, number of segments or None for any)
_KBS_ROUTES = {
    ("POST", "auth", 1),
    ("POST", "attest", 1),
    ("POST", "attestation-policy", 1),
    ("GET", "attestation-policy", 2),
    ("GET", "attestation-policies", 1),
    ("POST", "resource-policy", 1),
    ("GET", "resource-policy", 1),
    ("GET", "resource", 4),
    ("POST", "resource", 4),
    ("DELETE", "resource", 4),
    ("DELETE", "attestation-policy", 2),
    ("GET", "resources", 1),
}
_AS_ROUTES = {
    ("POST", "attestation"),
    ("POST", "challenge"),
    ("GET", "certificate"),
    ("GET", "jwks"),
    ("POST", "policy"),
    ("GET", "policies"),
}


def _not_found() -> Reply:
    return Reply.text(404, "404 page not found")


class Gateway:
    def __init__(
        self,
        kbs: KbsService,
        attestation: AttestationService,
        faults: FaultSwitches,
        log: ServerLog,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.kbs = kbs
        self.attestation = attestation
        self.faults = faults
        self.log = log
        self.clock = clock

    def _backends_down(self) -> bool:
        return self.faults.is_on("gateway-backend-down")

    def handle(self, method: str, rest: list[str], query: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """``rest`` are the raw segments after ``/api/``."""
        if not rest:
            return _not_found()
        head = rest[0]
        if head == "kbs" and len(rest) >= 3 and rest[1] == "v0":
            sub = rest[2:]
            if (method, sub[0], len(sub)) not in _KBS_ROUTES:
                return _not_found()
            if self._backends_down():
                self.log.error("gateway", "Failed to forward auth request to KBS: connection refused")
                return gateway_forward_error("KBS")
            return self.kbs.handle(method, sub, query, headers, body)
        if head in ("as", "attestation-service") and len(rest) >= 2:
            sub = rest[1:]
            if not ((method, sub[0]) in _AS_ROUTES and len(sub) == 1) and not (
                method == "GET" and sub[0] == "policy" and len(sub) == 2
            ):
                return _not_found()
            if self._backends_down():
                self.log.error("gateway", "Failed to forward request to Attestation Service: connection refused")
                return gateway_forward_error("Attestation Service")
            return self.attestation.handle(method, sub, body)
        if rest == ["services-health"] and method == "GET":
            return Reply.json(200, self.services_health())
        if rest == ["health"] and method == "GET":
            return Reply.json(200, {"status": "ok"})
        return _not_found()

    def services_health(self) -> dict[str, dict[str, str]]:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))

        def status(ok: bool, message: str = "") -> dict[str, str]:
            out = {"status": "ok" if ok else "error"}
            if message and not ok:
                out["message"] = message
            out["timestamp"] = now
            return out

        down = self._backends_down()
        if down:
            kbs = status(False, "forward kbs auth request failed")
            as_ = status(False, "forward as certificate request failed")
        else:
            # The gateway probes the KBS with an auth request; a demanded version it does not send fails the probe.
            mismatch = self.faults.is_on("kbs-version-mismatch")
            kbs = status(not mismatch, "kbs auth request failed")
            as_ = status(True)
        return {"gateway": status(True), "kbs": kbs, "as": as_, "rvps": status(True)}
