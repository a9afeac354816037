#!/usr/bin/env bash
# pgbench -n -S (built-in select-only, scale 10) in one run against:
#   direct PostgreSQL, pgbouncer (transaction pooling) → PostgreSQL,
#   `floe-bench forward` → PostgreSQL (a forwarder that only copies bytes:
#   the floor any proxy on this machine pays), and
#   Floe (release build, one `postgres` engine) → PostgreSQL,
# with 1 and 8 clients, simple and extended protocol; prints TPS, mean
# latency, Floe's ratios to the others and the CPU time Floe, pgbouncer and
# the forwarder each spent per transaction (user + system, from /proc).
#
#   bash benchmarks/pgbench.sh            # 10 s per run
#   FLOE_BENCH_WORKER_THREADS=2 bash ...    # clients' runtime threads (0: half the cores)
#   SECONDS_PER_RUN=30 bash benchmarks/pgbench.sh
#   ROUNDS=3 bash benchmarks/pgbench.sh      # each target 3 times in turn, medians
#   FLOE_BENCH_BASE=<floe> bash ...          # another Floe build too, same rounds (A/B)
#
# Needs the local PostgreSQL (FLOE_BENCH_PG_HOST/PORT/USER, default
# 127.0.0.1:5432 postgres); installs pgbouncer with apt-get when missing. The
# database `floe_pgbench` is created (and re-initialised) on that server.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/common.sh
. benchmarks/common.sh

host="${FLOE_BENCH_PG_HOST:-127.0.0.1}"
port="${FLOE_BENCH_PG_PORT:-5432}"
user="${FLOE_BENCH_PG_USER:-postgres}"
db=floe_pgbench
secs="${SECONDS_PER_RUN:-10}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d)"
bouncer_port=16432
floor_port=17432
floe_pg_port=25432
base_pg_port=26432

if ! command -v pgbouncer >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null
fi
pgbouncer_bin="$(command -v pgbouncer)"

cleanup() {
  # Floe flushes its telemetry as it exits: let it, before its data goes.
  [ -n "${floe_pid:-}" ] && kill "$floe_pid" 2>/dev/null && wait "$floe_pid" 2>/dev/null || true
  [ -n "${base_pid:-}" ] && kill "$base_pid" 2>/dev/null && wait "$base_pid" 2>/dev/null || true
  [ -n "${bouncer_pid:-}" ] && kill "$bouncer_pid" 2>/dev/null || true
  [ -n "${floor_pid:-}" ] && kill "$floor_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

psql -h "$host" -p "$port" -U "$user" -d postgres -qc "DROP DATABASE IF EXISTS $db" >/dev/null
psql -h "$host" -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE $db" >/dev/null
pgbench -h "$host" -p "$port" -U "$user" -i -s 10 -q "$db" >/dev/null 2>&1

# FLOE_BENCH_FLOE names a floe binary to measure instead of building one
# (and FLOE_BENCH_TOOL the floe-bench binary that forwards).
floe_bin="${FLOE_BENCH_FLOE:-$target/release/floe}"
bench_bin="${FLOE_BENCH_TOOL:-$target/release/floe-bench}"
[ -n "${FLOE_BENCH_FLOE:-}" ] || cargo build --release -p floe-proxy -p floe-benchmarks >/dev/null 2>&1
start_floor "$bench_bin" "$floor_port" "$host" "$port"

# pgbouncer runs as an unprivileged user when this script runs as root.
chmod 777 "$work"
cat >"$work/pgbouncer.ini" <<EOF
[databases]
$db = host=$host port=$port user=$user dbname=$db
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
auth_type = trust
auth_file = $work/users.txt
pool_mode = transaction
default_pool_size = 16
max_client_conn = 200
unix_socket_dir =
logfile = $work/pgbouncer.log
EOF
echo "\"$user\" \"\"" >"$work/users.txt"
if [ "$(id -u)" = 0 ]; then
  chown -R postgres "$work"
  runuser -u postgres -- "$pgbouncer_bin" -q "$work/pgbouncer.ini" &
else
  "$pgbouncer_bin" -q "$work/pgbouncer.ini" &
fi
bouncer_pid=$!

floe_config "$work" floe postgres "$floe_pg_port" "host=$host port=$port user=$user dbname=$db"
"$floe_bin" serve --config "$work/floe.toml" &
floe_pid=$!
ports="$bouncer_port $floor_port $floe_pg_port"
# FLOE_BENCH_BASE: a second Floe build measured in the same rounds, so that
# two builds compare under the same drift (the `base` columns, floe/base).
if [ -n "${FLOE_BENCH_BASE:-}" ]; then
  floe_config "$work" base postgres "$base_pg_port" "host=$host port=$port user=$user dbname=$db"
  "$FLOE_BENCH_BASE" serve --config "$work/base.toml" &
  base_pid=$!
  ports="$ports $base_pg_port"
fi

for p in $ports; do
  for _ in $(seq 1 100); do
    psql -h 127.0.0.1 -p "$p" -U "$user" -d "$db" -qAtc "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

# The pgbouncer process itself (under runuser when this script runs as root).
bouncer_proc="$(pgrep -n -x pgbouncer || echo "$bouncer_pid")"

run() { # target-port protocol clients → "tps latency_ms"
  pgbench -h 127.0.0.1 -p "$1" -U "$user" -n -S -M "$2" -c "$3" -j "$3" -T "$secs" "$db" 2>/dev/null |
    awk '/latency average/ {lat=$4} /^tps/ {tps=$3} END {printf "%.0f %.3f", tps, lat}'
}



# ROUNDS > 1 runs the four targets that many times in turn and reports each
# one's median: this machine's throughput drifts by 10 % and more between
# runs a minute apart, which a single run per target mistakes for a ratio.
rounds="${ROUNDS:-1}"
echo "pgbench -n -S, scale 10, ${secs}s per run, $rounds round(s), median, $(nproc) cores"
printf "%-9s %-8s %9s %9s %9s %9s %9s %9s %10s %9s %11s %11s %13s %12s %13s %9s %9s %13s\n" protocol clients direct \
  pgbouncer floor floe "floe/dir" "floe/pgb" "floe/floor" "floor/dir" "lat+ floe" "lat+ pgb" "floe cpu/txn" \
  "pgb cpu/txn" "floor cpu/txn" base "floe/base" "base cpu/txn"
for mode in simple extended; do
  for clients in 1 8; do
    : >"$work/runs"
    for _ in $(seq 1 "$rounds"); do
      measure direct 0 run "$port" "$mode" "$clients" >>"$work/runs"
      measure pgbouncer "$bouncer_proc" run "$bouncer_port" "$mode" "$clients" >>"$work/runs"
      measure floor "$floor_pid" run "$floor_port" "$mode" "$clients" >>"$work/runs"
      measure floe "$floe_pid" run "$floe_pg_port" "$mode" "$clients" >>"$work/runs"
      [ -z "${base_pid:-}" ] || measure base "$base_pid" run "$base_pg_port" "$mode" "$clients" >>"$work/runs"
    done
    medians "$work/runs" | awk -v m="$mode" -v c="$clients" '
      { tps[$1] = $2; lat[$1] = $3; cpu[$1] = $4 }
      END {
        d = tps["direct"]; b = tps["pgbouncer"]; o = tps["floor"]; f = tps["floe"]
        printf "%-9s %-8s %9.0f %9.0f %9.0f %9.0f %8.2fx %8.2fx %9.2fx %8.2fx %9.3fms %9.3fms %11.1fus %10.1fus %11.1fus",
          m, c, d, b, o, f, f / d, f / b, f / o, o / d, lat["floe"] - lat["direct"], lat["pgbouncer"] - lat["direct"],
          cpu["floe"], cpu["pgbouncer"], cpu["floor"]
        if ("base" in tps) printf " %9.0f %8.2fx %11.1fus", tps["base"], f / tps["base"], cpu["base"]
        printf "\n"
      }'
  done
done
