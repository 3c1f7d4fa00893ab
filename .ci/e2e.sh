#!/usr/bin/env bash
# `make e2e`: the container stack started for real (tests/e2e/test_stack.py runs the scenario).
#
#   1. Engine: a Docker engine that answers is used as it is. Otherwise Debian's docker.io,
#      docker-compose and debootstrap are installed when missing, and dockerd is started with
#      a data root of its own (E2E_DOCKER_ROOT, default /var/lib/carsales-docker, outside the
#      clone, so a later run finds its images cached), its own socket and pidfile; it is stopped
#      again at the end, with every container it ran.
#   2. Client: a docker client that can build with BuildKit (one with buildx, or a 20.10 client
#      whose BuildKit is built in) comes first on the PATH; Compose v2 where present, else v1.
#   3. Base images: the official ones when present or pullable; when no registry answers, the
#      offline stand-ins of ops/offline/build.sh (built once, then reused).
#   4. pytest -m e2e tests/e2e, with the stack published on POSTGRES_PORT/REDIS_PORT (default
#      15432/16379) so a PostgreSQL or Redis on the host is left alone.
#
# Usage: bash .ci/e2e.sh    (root is needed only to install packages or start an engine)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DOCKER_ROOT="${E2E_DOCKER_ROOT:-/var/lib/carsales-docker}"
SOCKET=/run/carsales-docker.sock
PIDFILE=/run/carsales-docker.pid
OFFICIAL_IMAGES=(python:3.11.14-slim-bookworm postgres:15-alpine redis:7-alpine)
started_pid=""
shim_dir=""

log() { printf '%s e2e: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

answers() { timeout 15 docker version >/dev/null 2>&1; }

install_packages() {  # Debian's packages, only those missing
    local want=()
    command -v dockerd >/dev/null || want+=(docker.io)
    command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || want+=(docker-compose)
    command -v debootstrap >/dev/null || want+=(debootstrap)
    [[ ${#want[@]} -eq 0 ]] && return
    log "installing ${want[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${want[@]}" >/dev/null
}

start_engine() {
    log "no Docker engine answers: starting dockerd (data root $DOCKER_ROOT)"
    mkdir -p "$DOCKER_ROOT"
    dockerd --data-root "$DOCKER_ROOT" --host "unix://$SOCKET" --pidfile "$PIDFILE" \
        --exec-root /run/carsales-docker-exec >/var/log/carsales-dockerd.log 2>&1 &
    started_pid=$!
    export DOCKER_HOST="unix://$SOCKET"
    for _ in $(seq 60); do answers && return; sleep 1; done
    tail -20 /var/log/carsales-dockerd.log >&2
    echo "dockerd did not answer within 60 s" >&2
    exit 1
}

stop_engine() {
    [[ -n "$started_pid" ]] || return 0
    log "stopping the dockerd it started (pid $started_pid)"
    kill -TERM "$started_pid" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$started_pid" 2>/dev/null || return 0; sleep 1; done
    kill -KILL "$started_pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    # The test takes its stack down itself; this is for a run interrupted before it could.
    if answers && [[ -n "${COMPOSE:-}" ]]; then
        $COMPOSE -p carsales-e2e down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    stop_engine
    [[ -n "$shim_dir" ]] && rm -rf "$shim_dir"
    exit "$status"
}
trap cleanup EXIT

builds_with_buildkit() {  # client $1: buildx installed, or a client older than 23 (BuildKit built in)
    "$1" buildx version >/dev/null 2>&1 && return 0
    local major
    major="$("$1" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)"
    [[ "$major" =~ ^[0-9]+$ && "$major" -lt 23 ]]
}

pick_client() {
    local client
    for client in $(type -ap docker); do
        if builds_with_buildkit "$client"; then
            if [[ "$client" != "$(type -p docker)" ]]; then
                shim_dir="$(mktemp -d)"
                ln -s "$client" "$shim_dir/docker"
                export PATH="$shim_dir:$PATH"
            fi
            log "docker client: $client"
            return
        fi
    done
    echo "no docker client on the PATH can build with BuildKit (install docker-buildx, or Debian's docker.io)" >&2
    exit 1
}

if ! command -v docker >/dev/null || ! answers; then
    if [[ -S "$SOCKET" ]] && DOCKER_HOST="unix://$SOCKET" answers; then
        export DOCKER_HOST="unix://$SOCKET"
    else
        install_packages
        start_engine
    fi
fi
install_packages
pick_client
if docker compose version >/dev/null 2>&1; then
    COMPOSE="docker compose"
else
    COMPOSE="docker-compose"
fi
export COMPOSE E2E_COMPOSE="$COMPOSE"
# Compose v1 builds through the docker client only when told to; BuildKit for RUN --mount.
export DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1
log "compose: $($COMPOSE version | head -n1)"

have_official() {
    local image
    for image in "${OFFICIAL_IMAGES[@]}"; do
        docker image inspect "$image" >/dev/null 2>&1 || timeout 300 docker pull -q "$image" >/dev/null 2>&1 || return 1
    done
}
if have_official; then
    log "base images: the official ones"
else
    log "base images: no registry answers, offline images (ops/offline/build.sh)"
    bash ops/offline/build.sh
    export PYTHON_IMAGE=carsales-offline/python:3.11 POSTGRES_IMAGE=carsales-offline/postgres:15 \
        REDIS_IMAGE=carsales-offline/redis:7
fi

export POSTGRES_PORT="${E2E_POSTGRES_PORT:-15432}" REDIS_PORT="${E2E_REDIS_PORT:-16379}" UI_PORT="${E2E_UI_PORT:-18080}"
started=$(date +%s)
.venv/bin/pytest -m e2e tests/e2e -p no:cacheprovider -s -q
log "scenario passed in $(($(date +%s) - started)) s"
