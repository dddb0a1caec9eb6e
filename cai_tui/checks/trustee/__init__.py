"""Trustee checks: the URL, the KBS handshake (seed CAI-2.5), the Attestation Service, the gateway, the model key.

All of them talk to ``answers.trustee.url`` (the seed's ``TRUSTEE_URL``, ``http://<alb>/<release>``) from this process
with the real KBS client; none of them changes anything on the server.

One module a check (shared plumbing in the ``_``-modules). Importing the package imports them all, in the order
the checks register (doctor runs them in it); the names stay importable from here, as before the split.
"""

# isort: off
# Kept in the order the checks register in, so not sorted.
from . import url, auth_nonce, as_reachable, gateway_health, resource
# isort: on

from ._common import (
    FIX_BACKEND_DOWN,
    FIX_UNREACHABLE,
    SLOW_SHARE,
    STAGE_DEPLOY,
    STAGE_KEY,
)
from .as_reachable import (
    trustee_as_reachable,
)
from .auth_nonce import (
    trustee_auth_nonce,
)
from .gateway_health import (
    trustee_gateway_health,
)
from .resource import (
    trustee_resource,
)
from .url import (
    trustee_url,
)

__all__ = [
    "FIX_BACKEND_DOWN",
    "FIX_UNREACHABLE",
    "SLOW_SHARE",
    "STAGE_DEPLOY",
    "STAGE_KEY",
    "as_reachable",
    "auth_nonce",
    "gateway_health",
    "resource",
    "trustee_as_reachable",
    "trustee_auth_nonce",
    "trustee_gateway_health",
    "trustee_resource",
    "trustee_url",
    "url",
]
