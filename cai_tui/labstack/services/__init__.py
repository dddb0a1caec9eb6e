"""Stand-ins for the CAI stack's containers (oss, attestation-agent, tng, confidential-data-hub, cachefs) and for
the vLLM inference server, run as ``python3 -m cai_tui.labstack.services <service>``.

They do the real work against the embedded lab (download from the lab OSS, RCAR handshake with the lab Trustee, the
real gocryptfs) and report failures in the formats of the upstream components they stand for (ossfs, guest-components'
CDH and AA, TNG, gocryptfs, vLLM/uvicorn), carrying what actually went wrong.
"""

from __future__ import annotations

SERVICES = ("oss", "attestation-agent", "tng", "confidential-data-hub", "cachefs", "inference")
