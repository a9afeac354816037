#!/usr/bin/env bash
# sysbench oltp_point_select and oltp_read_only through Floe's MySQL front end
# (release build, one `mysql` engine) → MariaDB, against MariaDB directly and
# through `floe-bench forward` (a forwarder that only copies bytes: the floor
# any proxy on this machine pays), in one run; prints TPS, mean latency, the
# ratios and the CPU time Floe and the forwarder spent per transaction
# (user + system, from /proc).
#
#   bash benchmarks/sysbench.sh               # 10 s per run, 1 and 8 threads
#   FLOE_BENCH_WORKER_THREADS=2 bash ...    # clients' runtime threads (0: half the cores)
#   SECONDS_PER_RUN=30 bash benchmarks/sysbench.sh
#   ROUNDS=3 bash benchmarks/sysbench.sh     # each target 3 times in turn, medians
#   FLOE_BENCH_BASE=<floe> bash ...          # another Floe build too, same rounds (A/B)
#   TESTS=oltp_point_select bash ...         # one test only
#
# Needs the local MariaDB (FLOE_BENCH_MY_HOST/PORT/USER, default
# 127.0.0.1:3306 root, empty password); installs sysbench with apt-get when
# missing. The database `floe_sysbench` is created (and re-filled) there.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/common.sh
. benchmarks/common.sh

host="${FLOE_BENCH_MY_HOST:-127.0.0.1}"
port="${FLOE_BENCH_MY_PORT:-3306}"
user="${FLOE_BENCH_MY_USER:-root}"
db=floe_sysbench
secs="${SECONDS_PER_RUN:-10}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d)"
floe_port=23306
base_port=24306
floor_port=13307

if ! command -v sysbench >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
fi

cleanup() {
  # Floe flushes its telemetry as it exits: let it, before its data goes.
  [ -n "${floe_pid:-}" ] && kill "$floe_pid" 2>/dev/null && wait "$floe_pid" 2>/dev/null || true
  [ -n "${base_pid:-}" ] && kill "$base_pid" 2>/dev/null && wait "$base_pid" 2>/dev/null || true
  [ -n "${floor_pid:-}" ] && kill "$floor_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mysql -h "$host" -P "$port" -u "$user" -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
common=(--db-driver=mysql --mysql-user="$user" --mysql-db="$db" --tables=1 --table-size=100000)
sysbench oltp_read_only "${common[@]}" --mysql-host="$host" --mysql-port="$port" prepare >/dev/null

# FLOE_BENCH_FLOE names a floe binary to measure instead of building one
# (and FLOE_BENCH_TOOL the floe-bench binary that forwards).
floe_bin="${FLOE_BENCH_FLOE:-$target/release/floe}"
bench_bin="${FLOE_BENCH_TOOL:-$target/release/floe-bench}"
[ -n "${FLOE_BENCH_FLOE:-}" ] || cargo build --release -p floe-proxy -p floe-benchmarks >/dev/null 2>&1
start_floor "$bench_bin" "$floor_port" "$host" "$port"
floe_config "$work" floe mysql "$floe_port" "mysql://$user@$host:$port/$db" "$db"
"$floe_bin" serve --config "$work/floe.toml" &
floe_pid=$!
ports="$floe_port"
# FLOE_BENCH_BASE: a second Floe build measured in the same rounds (see
# pgbench.sh).
if [ -n "${FLOE_BENCH_BASE:-}" ]; then
  floe_config "$work" base mysql "$base_port" "mysql://$user@$host:$port/$db" "$db"
  "$FLOE_BENCH_BASE" serve --config "$work/base.toml" &
  base_pid=$!
  ports="$ports $base_port"
fi
for p in $ports; do
  for _ in $(seq 1 100); do
    mysql -h 127.0.0.1 -P "$p" -u "$user" -e "SELECT 1" >/dev/null 2>&1 && break
    sleep 0.2
  done
done

run() { # test port threads → "tps latency_ms" (or "error")
  sysbench "$1" "${common[@]}" --mysql-host=127.0.0.1 --mysql-port="$2" --threads="$3" \
    --time="$secs" --report-interval=0 run 2>&1 |
    awk '/transactions:/ {gsub(/[(]/, "", $3); tps=$3} /avg:/ {lat=$2} /FATAL/ {err=1}
         END {if (err || tps == "") print "error"; else printf "%.0f %.3f", tps, lat}'
}



# ROUNDS > 1 runs the three targets that many times in turn and reports each
# one's median (see pgbench.sh).
rounds="${ROUNDS:-1}"
echo "sysbench, 1 table of 100000 rows, ${secs}s per run, $rounds round(s), median, $(nproc) cores"
printf "%-18s %-8s %9s %9s %9s %9s %10s %9s %11s %11s %13s %14s %9s %9s %13s\n" test threads direct floor floe "floe/dir" \
  "floe/floor" "floor/dir" "lat direct" "lat floe" "floe cpu/txn" "floor cpu/txn" base "floe/base" "base cpu/txn"
for test in ${TESTS:-oltp_point_select oltp_read_only}; do
  for threads in 1 8; do
    : >"$work/runs"
    for _ in $(seq 1 "$rounds"); do
      measure direct 0 run "$test" "$port" "$threads" >>"$work/runs"
      measure floor "$floor_pid" run "$test" "$floor_port" "$threads" >>"$work/runs"
      measure floe "$floe_pid" run "$test" "$floe_port" "$threads" >>"$work/runs"
      [ -z "${base_pid:-}" ] || measure base "$base_pid" run "$test" "$base_port" "$threads" >>"$work/runs"
    done
    if grep -q ' error$' "$work/runs"; then
      printf "%-18s %-8s %s\n" "$test" "$threads" "error: $(grep ' error$' "$work/runs" | cut -d' ' -f1 | sort -u | xargs)"
      continue
    fi
    medians "$work/runs" | awk -v t="$test" -v c="$threads" '
      { tps[$1] = $2; lat[$1] = $3; cpu[$1] = $4 }
      END {
        d = tps["direct"]; o = tps["floor"]; f = tps["floe"]
        printf "%-18s %-8s %9.0f %9.0f %9.0f %8.2fx %9.2fx %8.2fx %9.3fms %9.3fms %11.1fus %12.1fus",
          t, c, d, o, f, f / d, f / o, o / d, lat["direct"], lat["floe"], cpu["floe"], cpu["floor"]
        if ("base" in tps) printf " %9.0f %8.2fx %11.1fus", tps["base"], f / tps["base"], cpu["base"]
        printf "\n"
      }'
  done
done
