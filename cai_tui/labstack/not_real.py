"""The one place that says which pieces of the lab's TNG path are not the real thing, and why.

Real: both TNG ends run the ``tng`` binary of the tng-sdk wheel (2.12.0) — the server egress in the lab instance's
tng service (passport model), the client proxy that ``cai-tui tng launch`` starts on 127.0.0.1:41000 — and they
attest through the lab Trustee's attestation service over its restful API (``/challenge``, ``/attestation``,
``/certificate``), with the ttrpc protocol on the attestation agent's unix socket. What is a stand-in is listed here;
the lab instance's banner and docs read :data:`TNG_NOT_REAL`.
"""

from __future__ import annotations

TNG_NOT_REAL: tuple[tuple[str, str], ...] = (
    (
        "attestation agent",
        "a Python stand-in serves guest-components' ttrpc AttestationAgentService on the real socket path, with the "
        "sample attester's evidence (no TEE here); the real AA binary is not available on this machine",
    ),
    (
        "TNG egress capture",
        "the lab's tng server uses a `mapping` egress on its own loopback port (CAI_LAB_TNG_PORT) forwarding to "
        "MODEL_SERVICE_PORT, where CAI uses `netfilter` capture of MODEL_SERVICE_PORT: netfilter needs NET_ADMIN and "
        "iptables rules, which in the lab's host-network containers would change this machine's own firewall",
    ),
    (
        "attestation service",
        "the lab Trustee's AS is cai-tui's emulation of Trustee's restful AS (sample verifier, EAR tokens signed by a "
        "lab CA), not the upstream binary",
    ),
    (
        "inference",
        "the vLLM behind the egress is the labstack inference stand-in (CPU, a deterministic toy model)",
    ),
)


def describe() -> str:
    """One line per stand-in, for banners and docs."""
    return "\n".join(f"- {what}: {why}" for what, why in TNG_NOT_REAL)
