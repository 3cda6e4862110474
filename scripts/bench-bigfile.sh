#!/usr/bin/env bash
# bench-bigfile.sh: push one big file through upload, processing and download
# on the embedded database and print, per phase, the time and the peak RSS of
# each process (the CLI, the server, the database) and the peak size of the
# work database's write-ahead log.
#
#   scripts/bench-bigfile.sh [SIZE_MB] [WORKERS]    # default 1024 MB, 4 workers
#
# The input is generated on the fly (lines of about 70 bytes: 1 GB is about
# 15M lines), in a temporary folder that is removed at the end; it needs about
# 4x SIZE_MB of free disk (input, stored slices, output). The job type is
# `copy` (output = input), and the output is compared with the input byte for
# byte. Peak RSS comes from GNU time (Debian package `time`) for the CLI and
# the server (run with --drain, so it exits when the job is done) and from
# /proc/PID/status (VmHWM) for the database.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb=${1:-1024}
workers=${2:-4}
if [ ! -x /usr/bin/time ]; then
  echo "bench-bigfile: needs GNU time: apt-get install -y time" >&2
  exit 1
fi

dir=$(mktemp -d "${TMPDIR:-/tmp}/rocketjob-bigfile-XXXXXX")
db_pid=""
cleanup() {
  if [ -n "$db_pid" ]; then kill "$db_pid" 2>/dev/null || true; wait "$db_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

go build -o "$dir/rocketjob" ./cmd/rocketjob
rj="$dir/rocketjob"

echo "generating ${size_mb} MB of lines..." >&2
awk -v limit=$((size_mb * 1024 * 1024)) 'BEGIN {
  for (i = 1; n < limit; i++) {
    line = sprintf("%012d,customer-%d,%d.%02d,some free text for record %d", i, i % 99991, i % 5000, i % 100, i)
    print line
    n += length(line) + 1
  }
}' >"$dir/in.txt"
lines=$(wc -l <"$dir/in.txt")
bytes=$(stat -c %s "$dir/in.txt")

"$rj" db --data "$dir/data" --listen 127.0.0.1:0 >"$dir/db.uri" 2>"$dir/db.log" &
db_pid=$!
for _ in $(seq 150); do [ -s "$dir/db.uri" ] && break; sleep 0.2; done
export ROCKETJOB_URI
ROCKETJOB_URI=$(head -n 1 "$dir/db.uri")

wal_peak=0
wal_file="$dir/data/rocketjob_work.sqlite-wal"
# sample_wal records the peak size of the work database's write-ahead log
# while the given process runs.
sample_wal() {
  while kill -0 "$1" 2>/dev/null; do
    s=$(stat -c %s "$wal_file" 2>/dev/null || echo 0)
    [ "$s" -gt "$(cat "$dir/wal.peak" 2>/dev/null || echo 0)" ] && echo "$s" >"$dir/wal.peak"
    sleep 0.5
  done
}
echo 0 >"$dir/wal.peak"

# phase NAME CMD...: runs CMD under GNU time, with the WAL sampled.
phase() {
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -f "%M" -o "$dir/$name.rss" "$@" >"$dir/$name.out" 2>"$dir/$name.err" &
  local pid=$!
  sample_wal "$pid" &
  local sampler=$!
  if ! wait "$pid"; then
    echo "bench-bigfile: $name failed:" >&2; tail -n 5 "$dir/$name.err" >&2; exit 1
  fi
  wait "$sampler" || true
  end=$(date +%s.%N)
  # The database's high-water mark so far: which phase raised it.
  local db_hwm
  db_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$db_pid/status")
  printf '%s %s %s %s\n' "$name" "$(echo "$end - $start" | bc)" "$(tail -n 1 "$dir/$name.rss")" "$db_hwm" >>"$dir/phases"
}

phase upload "$rj" upload --job copy "$dir/in.txt"
id=$(tail -n 1 "$dir/upload.out")
phase process "$rj" server --workers "$workers" --drain --name bigfile
phase download "$rj" download "$id" "$dir/out.txt"
db_hwm=$(awk '/VmHWM/ {print $2}' "/proc/$db_pid/status")

if ! cmp -s "$dir/in.txt" "$dir/out.txt"; then
  echo "bench-bigfile: the output differs from the input" >&2
  exit 1
fi

printf 'rocketjob big file: %d MB, %d lines, copy job, %d workers, embedded database (%s)\n' \
  $((bytes >> 20)) "$lines" "$workers" "$(date -u +%Y-%m-%d)"
printf '%-10s %10s %12s %16s %12s\n' phase seconds "peak RSS MB" "db peak so far" records/s
while read -r name secs rss dbrss; do
  printf '%-10s %10.1f %12d %16d %12.0f\n' "$name" "$secs" $((rss / 1024)) $((dbrss / 1024)) "$(echo "$lines / $secs" | bc -l)"
done <"$dir/phases"
printf 'database peak RSS: %d MB; work database WAL peak: %d MB; output identical to the input\n' \
  $((db_hwm / 1024)) $(($(cat "$dir/wal.peak") >> 20))
