#!/bin/sh
# The official image builds Redis with protected mode off (the container's network is the
# boundary); Debian's build keeps it on, which refuses every client from another container.
set -e
if [ "$1" = redis-server ]; then
    set -- "$@" --protected-mode no
fi
exec "$@"
