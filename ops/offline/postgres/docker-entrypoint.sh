#!/usr/bin/env bash
# What the stack relies on from the official postgres image's entrypoint:
#  - on first start (no $PGDATA/PG_VERSION) a cluster is created with superuser $POSTGRES_USER
#    (default postgres) and password $POSTGRES_PASSWORD (required), encoding UTF8; the Unix
#    socket is trusted, TCP from anywhere needs scram-sha-256; then database $POSTGRES_DB
#    (default: the user's name) is created, on a server that listens on the socket only, so
#    `pg_isready -h localhost` answers only once the real server is up;
#  - `postgres -c name=value ...` (or only `-c ...`) starts the server as PID 1 with those settings.
set -Eeuo pipefail

if [[ "${1:-}" == -* ]]; then
    set -- postgres "$@"
fi

if [[ "${1:-}" == postgres && ! -s "$PGDATA/PG_VERSION" ]]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    initdb --username="$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256
    printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
    printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
    pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses=''" --wait start
    if [[ "$db" != postgres ]]; then
        psql --no-psqlrc -v ON_ERROR_STOP=1 --username="$user" --dbname=postgres --set=db="$db" \
            <<<'CREATE DATABASE :"db";'
    fi
    pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop
fi

exec "$@"
