"""Loopback KMS (API 2016-01-20) that the real alibabacloud-kms20160120 SDK accepts.

Both request signatures the SDK speaks are verified by the server's own implementation (ACS3-HMAC-SHA256,
the default, plus ACS3-HMAC-SM3; and the legacy RPC HMAC-SHA1 of ``Config(signature_algorithm='v2')``),
STS tokens included. Secrets persist in ``<state_dir>/kms-secrets.json``. Fault switches:
``kms-secret-missing`` and ``kms-bad-key``.
"""

from cai_tui.lab.kms.credentials import KmsCredentials
from cai_tui.lab.kms.errors import KmsError
from cai_tui.lab.kms.secrets_store import KmsStateError
from cai_tui.lab.kms.server import KmsLab

__all__ = ["KmsCredentials", "KmsError", "KmsLab", "KmsStateError"]
