"""``python3 -m cai_tui.labstack.services <service> [args…]``: run one stand-in service."""

from __future__ import annotations

import importlib
import sys

from . import SERVICES

_MODULES = {
    "oss": "oss",
    "attestation-agent": "attestation_agent",
    "tng": "tng",
    "confidential-data-hub": "cdh",
    "cachefs": "cachefs",
    "inference": "inference",
}


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help") or args[0] not in _MODULES:
        what = f"unknown service {args[0]!r}; " if args and args[0] not in ("-h", "--help") else ""
        print(f"usage: python3 -m cai_tui.labstack.services {{{','.join(SERVICES)}}} [args…]", file=sys.stderr)
        if what:
            print(f"error: {what}choose one of {', '.join(SERVICES)}", file=sys.stderr)
        return 2 if what or not args else 0
    module = importlib.import_module(f"{__package__}.{_MODULES[args[0]]}")
    return int(module.main(args[1:]))


if __name__ == "__main__":
    sys.exit(main())
