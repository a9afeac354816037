#!/usr/bin/env bash
# sysbench oltp_point_select and oltp_read_only through Floe's MySQL front end
# (release build, one `mysql` engine) → MariaDB, against MariaDB directly, in
# one run; prints TPS, mean latency, the ratio and the CPU time Floe spent
# per transaction (user + system, from /proc).
#
#   bash benchmarks/sysbench.sh               # 10 s per run, 1 and 8 threads
#   FLOE_BENCH_WORKER_THREADS=2 bash ...    # clients' runtime threads (0: half the cores)
#   SECONDS_PER_RUN=30 bash benchmarks/sysbench.sh
#
# Needs the local MariaDB (FLOE_BENCH_MY_HOST/PORT/USER, default
# 127.0.0.1:3306 root, empty password); installs sysbench with apt-get when
# missing. The database `floe_sysbench` is created (and re-filled) there.
set -euo pipefail
cd "$(dirname "$0")/.."

host="${FLOE_BENCH_MY_HOST:-127.0.0.1}"
port="${FLOE_BENCH_MY_PORT:-3306}"
user="${FLOE_BENCH_MY_USER:-root}"
db=floe_sysbench
secs="${SECONDS_PER_RUN:-10}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
work="$(mktemp -d)"
floe_port=23306

if ! command -v sysbench >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sysbench >/dev/null
fi

cleanup() {
  # Floe flushes its telemetry as it exits: let it, before its data goes.
  [ -n "${floe_pid:-}" ] && kill "$floe_pid" 2>/dev/null && wait "$floe_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mysql -h "$host" -P "$port" -u "$user" -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db"
common=(--db-driver=mysql --mysql-user="$user" --mysql-db="$db" --tables=1 --table-size=100000)
sysbench oltp_read_only "${common[@]}" --mysql-host="$host" --mysql-port="$port" prepare >/dev/null

# FLOE_BENCH_FLOE names a floe binary to measure instead of building one.
floe_bin="${FLOE_BENCH_FLOE:-$target/release/floe}"
[ -n "${FLOE_BENCH_FLOE:-}" ] || cargo build --release -p floe-proxy -p floe-benchmarks >/dev/null 2>&1
cat >"$work/floe.toml" <<EOF
[server]
data_dir = "$work/floe-data"
worker_threads = ${FLOE_BENCH_WORKER_THREADS:-0}
[listen]
mysql = "127.0.0.1:$floe_port"
admin = "127.0.0.1:0"
[demo]
enabled = false
[logging]
level = "warn"
[routing]
default_schema = "$db"
[[engines]]
name = "maria"
type = "mysql"
url = "mysql://$user@$host:$port/$db"
max_connections = 16
EOF
"$floe_bin" serve --config "$work/floe.toml" &
floe_pid=$!
for _ in $(seq 1 100); do
  mysql -h 127.0.0.1 -P "$floe_port" -u "$user" -e "SELECT 1" >/dev/null 2>&1 && break
  sleep 0.2
done

run() { # test port threads → "tps latency_ms" (or "error")
  sysbench "$1" "${common[@]}" --mysql-host=127.0.0.1 --mysql-port="$2" --threads="$3" \
    --time="$secs" --report-interval=0 run 2>&1 |
    awk '/transactions:/ {gsub(/[(]/, "", $3); tps=$3} /avg:/ {lat=$2} /FATAL/ {err=1}
         END {if (err || tps == "") print "error"; else printf "%.0f %.3f", tps, lat}'
}

# CPU seconds a process has used (user + system), from /proc.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}

echo "sysbench, 1 table of 100000 rows, ${secs}s per run, $(nproc) cores"
printf "%-18s %-8s %12s %12s %9s %12s %12s %13s\n" test threads direct floe "floe/dir" "lat direct" "lat floe" \
  "floe cpu/txn"
for test in oltp_point_select oltp_read_only; do
  for threads in 1 8; do
    read -r d_tps d_lat <<<"$(run "$test" "$port" "$threads")"
    cpu_before="$(cpu_seconds "$floe_pid")"
    read -r f_tps f_lat <<<"$(run "$test" "$floe_port" "$threads")" || true
    cpu_after="$(cpu_seconds "$floe_pid")"
    if [ "$f_tps" = error ]; then
      printf "%-18s %-8s %12s %12s\n" "$test" "$threads" "$d_tps" "error"
      continue
    fi
    awk -v t="$test" -v c="$threads" -v d="$d_tps" -v f="$f_tps" -v dl="$d_lat" -v fl="$f_lat" \
      -v cpu="$cpu_after" -v cpu0="$cpu_before" -v s="$secs" \
      'BEGIN { printf "%-18s %-8s %12s %12s %8.2fx %10.3fms %10.3fms %11.1fus\n", t, c, d, f, f / d, dl, fl,
        (cpu - cpu0) * 1e6 / (f * s) }'
  done
done
