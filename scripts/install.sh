#!/usr/bin/env bash
# Install cai-tui into ./.venv (Debian with Python 3.10+; run as root or with sudo for the system packages).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
ensure_venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[lab]'
ensure_compose_plugin  # the lab instance deploys with plain `docker compose`
echo "installed: $(.venv/bin/cai-tui --version)" >&2
