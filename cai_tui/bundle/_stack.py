"""The CAI stack's compose labels and how to reach a target's Docker engine: the cai.containers check's own
definitions, so the bundle finds exactly the containers that check looks at."""

from __future__ import annotations

try:
    from ..checks.instance.containers import (
        CAI_PROJECT,
        CAI_SERVICES,
        PROJECT_LABEL,
        SERVICE_LABEL,
        docker_url_for,
    )
except ImportError:  # pragma: no cover - the single-module layout of cai_tui.checks.instance
    from ..checks.instance import (  # type: ignore[attr-defined,no-redef]
        CAI_PROJECT,
        CAI_SERVICES,
        PROJECT_LABEL,
        SERVICE_LABEL,
        docker_url_for,
    )

__all__ = ["CAI_PROJECT", "CAI_SERVICES", "PROJECT_LABEL", "SERVICE_LABEL", "docker_url_for"]
