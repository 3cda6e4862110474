#!/usr/bin/env bash
# bench-peers.sh: the batch benchmark with River on PostgreSQL as a peer, in
# one run: rocketjob, the raw-driver baseline and River (one job per record),
# printed as ratios. Not run by CI.
#
#   scripts/bench-peers.sh [N] [extra benchmark flags (go -C bench run . --help)...]
#
# Installs PostgreSQL from Debian packages if missing, starts a throwaway
# cluster in a temporary folder on 127.0.0.1:$PGPORT (default 54329) as the
# postgres user, creates the database riverbench, runs
# `go -C bench run . --n N --river-dsn ...` (the River side runs
# River's migrations itself, through rivermigrate) and stops and removes the
# cluster. PostgreSQL keeps its durable defaults (fsync, synchronous_commit).
set -euo pipefail

N=${1:-100000}
shift || true
PGPORT=${PGPORT:-54329}
cd "$(dirname "$0")/.."

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql
fi
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

DIR=$(mktemp -d /tmp/rocketjob-bench-pg.XXXXXX)
chown postgres: "$DIR"
as_pg() { if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi; }

stop() {
	as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
	rm -rf "$DIR"
}
trap stop EXIT

as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w \
	-o "-c listen_addresses=127.0.0.1 -c port=$PGPORT -c unix_socket_directories=$DIR -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PGPORT" -U postgres riverbench

echo "uptime before the run: $(uptime)" >&2
go -C bench run . --n "$N" --river-dsn "postgres://postgres@127.0.0.1:$PGPORT/riverbench?sslmode=disable" "$@"
