# Sourced by .ci/run (bash): starts a throwaway PostgreSQL cluster for the
# tests of FerretDB over PostgreSQL, and defines pg_stop, which stops it and
# removes its files.
#
# PostgreSQL comes from Debian's packages (installed if missing). The cluster
# is made by initdb in a temporary folder and runs as the postgres user when
# this script runs as root (postgres refuses to run as root), on a free
# loopback port with a Unix socket in its own folder, so it touches neither
# Debian's own cluster nor port 5432. Its superuser "rocketjob" has a random
# password, so the tests also check that no message shows it. It exports
#
#   ROCKETJOB_TEST_POSTGRESQL=postgres://rocketjob:PASSWORD@127.0.0.1:PORT/postgres
#
# which internal/dbtest and integration/ read (they create a database per
# test package or cluster). synchronous_commit=off: a throwaway cluster need
# not wait for the disk at each commit (nor does the embedded SQLite, with
# synchronous=NORMAL).

pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  apt-get update && apt-get install -y postgresql
  pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
"$pg_bin/postgres" --version

pg_dir=$(mktemp -d /tmp/rocketjob-pg.XXXXXX)
chmod 755 "$pg_dir"
pg_as=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$pg_dir"
  pg_as=(runuser -u postgres --)
fi
pg_password=$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
printf '%s\n' "$pg_password" > "$pg_dir/pwfile"
[ "$(id -u)" = 0 ] && chown postgres "$pg_dir/pwfile"
"${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U rocketjob --pwfile="$pg_dir/pwfile" \
  --auth=scram-sha-256 --encoding=UTF8 --locale=C >"$pg_dir/initdb.log" 2>&1 ||
  { cat "$pg_dir/initdb.log"; exit 1; }
rm -f "$pg_dir/pwfile"

pg_stop() {
  if [ -n "${pg_dir:-}" ] && [ -d "$pg_dir" ]; then
    "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pg_dir"
  fi
  pg_dir=
}

pg_port=
for port in $(seq 55432 55452); do
  if "${pg_as[@]}" "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w -t 60 start \
    -o "-p $port -c listen_addresses=127.0.0.1 -k $pg_dir -c max_connections=300 -c synchronous_commit=off" >/dev/null 2>&1; then
    pg_port=$port
    break
  fi
done
if [ -z "$pg_port" ]; then
  echo "could not start PostgreSQL on a port in 55432-55452:"; tail -n 20 "$pg_dir/server.log"; pg_stop; exit 1
fi
export ROCKETJOB_TEST_POSTGRESQL="postgres://rocketjob:${pg_password}@127.0.0.1:${pg_port}/postgres"
echo "PostgreSQL running on 127.0.0.1:$pg_port (data in $pg_dir)"
