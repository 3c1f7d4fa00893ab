#!/usr/bin/env bash
# Base images for a host that reaches no container registry (air-gapped, or no Docker Hub),
# built from Debian's package mirror alone:
#
#   carsales-offline/debian:bookworm   debootstrap --variant=minbase, imported with `docker import`
#   carsales-offline/python:3.11       Debian's python3 (3.11) in a venv on the PATH, as python:3.11-slim
#   carsales-offline/postgres:15       Debian's postgresql-15 behind an entrypoint like postgres:15-alpine's
#   carsales-offline/redis:7           Debian's redis-server (7.0), as redis:7-alpine
#
# They have names of their own and never take an official image's tag. Use them with
#   PYTHON_IMAGE=carsales-offline/python:3.11 POSTGRES_IMAGE=carsales-offline/postgres:15 \
#   REDIS_IMAGE=carsales-offline/redis:7 docker compose up --build
#
# Each image is built only when it is missing or this folder changed since it was built (the
# folder's hash is an image label), so a second call takes a second. The host's CA trust store
# goes into the base image (pip inside must trust whatever TLS the host trusts); never into the
# project's Dockerfiles.
#
# Usage (as root, for debootstrap): bash ops/offline/build.sh
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), CA_BUNDLE (default
# /etc/ssl/certs/ca-certificates.crt), DOCKER_HOST as for any docker command.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
BASE=carsales-offline/debian:bookworm
HASH="$(cd "$HERE" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
LABEL=org.carsales.offline.hash
TRUST_STORE=/usr/local/share/carsales-offline/ca-certificates.crt

log() { printf '%s offline images: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

current() {  # true if image $1 exists and was built from this folder
    [[ "$(docker image inspect --format "{{ index .Config.Labels \"$LABEL\" }}" "$1" 2>/dev/null)" == "$HASH" ]]
}

build_base() {
    current "$BASE" && return
    command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }
    local rootfs
    rootfs="$(mktemp -d /var/tmp/carsales-rootfs.XXXXXX)"
    trap 'rm -rf "$rootfs"' RETURN
    log "debootstrap bookworm from $MIRROR"
    debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >/dev/null
    # Services must not start inside image builds (as in Debian's official images).
    printf '#!/bin/sh\nexit 101\n' >"$rootfs/usr/sbin/policy-rc.d"
    chmod 755 "$rootfs/usr/sbin/policy-rc.d"
    # Outside /etc/ssl/certs, which Debian's ca-certificates regenerates when a package pulls it in.
    mkdir -p "$rootfs/usr/local/share/carsales-offline"
    cp "$CA_BUNDLE" "$rootfs/$TRUST_STORE"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    log "import $BASE"
    tar -C "$rootfs" -c . | docker import \
        --change "LABEL $LABEL=$HASH" \
        --change "ENV PIP_CERT=$TRUST_STORE SSL_CERT_FILE=$TRUST_STORE LANG=C.UTF-8" \
        --change 'CMD ["bash"]' - "$BASE" >/dev/null
}

build_image() {  # name folder
    current "$1" && return
    log "build $1"
    DOCKER_BUILDKIT=1 docker build --quiet --build-arg "BASE_IMAGE=$BASE" --label "$LABEL=$HASH" \
        -t "$1" "$HERE/$2" >/dev/null
}

build_base
build_image carsales-offline/python:3.11 python
build_image carsales-offline/postgres:15 postgres
build_image carsales-offline/redis:7 redis
log "ready"
