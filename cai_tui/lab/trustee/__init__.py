"""The lab Trustee: KBS + Attestation Service + the Alibaba gateway shape, on one loopback port.

Public API (the lab orchestrator's contract): :class:`TrusteeSettings`, :class:`TrusteeLab`,
:func:`generate_admin_keypair`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from cai_tui.lab.trustee.server import TrusteeLab
from cai_tui.lab.trustee.settings import TrusteeSettings


def generate_admin_keypair() -> tuple[bytes, bytes]:
    """A fresh Ed25519 admin key pair as ``(private_pem (PKCS#8), public_pem (SubjectPublicKeyInfo))``."""
    key = ed25519.Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


__all__ = ["TrusteeLab", "TrusteeSettings", "generate_admin_keypair"]
