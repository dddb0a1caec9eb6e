#!/usr/bin/env bash
# Install what the tests need (system packages included) and run the whole suite: lint, types, tests.
# Real components are used, never mocks: the real gocryptfs binary with FUSE, tmux, the lab servers.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh
apt_install gocryptfs fuse3 tmux iproute2 openssh-server openssh-sftp-server openssh-client docker.io containerd busybox-static e2fsprogs qemu-utils openssl chromium fuse2fs containernetworking-plugins iputils-ping
[ -e /dev/fuse ] || $SUDO modprobe fuse 2>/dev/null || true
start_dockerd
ensure_venv
.venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
ensure_compose_plugin
export CAI_TUI_HOME="${CAI_TUI_HOME:-$(mktemp -d)}"
echo "== ruff" >&2
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy" >&2
.venv/bin/mypy
echo "== pytest" >&2
.venv/bin/pytest -q --durations=25 "$@"  # the 25 longest tests, to keep the suite inside its time
