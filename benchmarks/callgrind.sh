#!/usr/bin/env bash
# Floe's user-space instructions per statement under valgrind's callgrind,
# counters zeroed after a warm-up: `pgbench -n -S` through the PostgreSQL
# front end (one `postgres` engine, pgbench.sh's configuration), or sysbench
# `oltp_point_select` through the MySQL front end (one `mysql` engine,
# sysbench.sh's). A count, not a time: the noise of a shared machine does not
# move it, so two builds compare in one run even where their throughput
# difference is within that noise.
#
#   FLOE_BENCH_FLOE=<floe> bash benchmarks/callgrind.sh            # pgbench, simple protocol
#   MODE=extended TRANSACTIONS=5000 FLOE_BENCH_FLOE=<floe> bash ...
#   CLIENT=sysbench FLOE_BENCH_FLOE=<floe> bash ...                 # MySQL front end
#   FLOE_BENCH_BASE=<other floe> ...                                # both, one after the other
#
# Prints instructions per transaction and the inclusive top of each build
# (callgrind_annotate); the raw profiles stay in $OUT (default /tmp/floe-callgrind).
# Needs valgrind (installed with apt-get when missing), the local PostgreSQL
# (FLOE_BENCH_PG_HOST/PORT/USER, default 127.0.0.1:5432 postgres; database
# `floe_pgbench` created at scale 1 when missing) or, for sysbench, the local
# MariaDB (FLOE_BENCH_MY_HOST/PORT/USER, default 127.0.0.1:3306 root; database
# `floe_sysbench` created with 10000 rows when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benchmarks/common.sh
. benchmarks/common.sh

client="${CLIENT:-pgbench}"
mode="${MODE:-simple}"
transactions="${TRANSACTIONS:-2000}"
out="${OUT:-/tmp/floe-callgrind}"
floe_port=27432
work="$(mktemp -d)"
mkdir -p "$out"

if ! command -v valgrind >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
fi
cleanup() {
  [ -n "${floe_pid:-}" ] && kill "$floe_pid" 2>/dev/null && wait "$floe_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

case "$client" in
  pgbench)
    host="${FLOE_BENCH_PG_HOST:-127.0.0.1}"
    port="${FLOE_BENCH_PG_PORT:-5432}"
    user="${FLOE_BENCH_PG_USER:-postgres}"
    db=floe_pgbench
    if ! psql -h "$host" -p "$port" -U "$user" -d "$db" -qAtc "SELECT 1 FROM pgbench_accounts LIMIT 1" >/dev/null 2>&1; then
      psql -h "$host" -p "$port" -U "$user" -d postgres -qc "CREATE DATABASE $db" >/dev/null 2>&1 || true
      pgbench -h "$host" -p "$port" -U "$user" -i -s 1 -q "$db" >/dev/null 2>&1
    fi
    configure() { floe_config "$work" "$1" postgres "$floe_port" "host=$host port=$port user=$user dbname=$db"; }
    ready() { psql -h 127.0.0.1 -p "$floe_port" -U "$user" -d "$db" -qAtc "SELECT 1" >/dev/null 2>&1; }
    drive() { pgbench -h 127.0.0.1 -p "$floe_port" -U "$user" -n -S -M "$mode" -c 1 -t "$1" "$db" >/dev/null 2>&1; }
    ;;
  sysbench)
    host="${FLOE_BENCH_MY_HOST:-127.0.0.1}"
    port="${FLOE_BENCH_MY_PORT:-3306}"
    user="${FLOE_BENCH_MY_USER:-root}"
    db=floe_sysbench
    mode=point_select
    sb=(--db-driver=mysql --mysql-user="$user" --mysql-db="$db" --tables=1 --table-size=10000)
    if ! mysql -h "$host" -P "$port" -u "$user" -e "SELECT 1 FROM $db.sbtest1 LIMIT 1" >/dev/null 2>&1; then
      mysql -h "$host" -P "$port" -u "$user" -e "CREATE DATABASE IF NOT EXISTS $db"
      sysbench oltp_point_select "${sb[@]}" --mysql-host="$host" --mysql-port="$port" prepare >/dev/null
    fi
    configure() { floe_config "$work" "$1" mysql "$floe_port" "mysql://$user@$host:$port/$db" "$db"; }
    ready() { mysql -h 127.0.0.1 -P "$floe_port" -u "$user" -e "SELECT 1" >/dev/null 2>&1; }
    drive() {
      sysbench oltp_point_select "${sb[@]}" --mysql-host=127.0.0.1 --mysql-port="$floe_port" \
        --threads=1 --time=0 --events="$1" --report-interval=0 run >/dev/null 2>&1
    }
    ;;
  *)
    echo "CLIENT is pgbench or sysbench" >&2
    exit 2
    ;;
esac

profile() { # name binary
  local name=$1 bin=$2
  configure "$name"
  rm -f "$out/$name".*
  valgrind --tool=callgrind --callgrind-out-file="$out/$name.%p" "$bin" serve --config "$work/$name.toml" \
    2>"$work/valgrind.log" &
  floe_pid=$!
  for _ in $(seq 1 300); do
    ready && break
    sleep 0.5
  done
  drive 300
  callgrind_control -z "$floe_pid" >/dev/null
  drive "$transactions"
  callgrind_control -d "$floe_pid" >/dev/null
  kill "$floe_pid" 2>/dev/null; wait "$floe_pid" 2>/dev/null || true
  # The counts from zeroing to the dump are part 1; the file without a part
  # number is what the process did after it (shutting down).
  local dump="$out/$name.$floe_pid.1"
  local total
  total="$(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(/,/, "", $1); print $1}')"
  echo "== $name: $(awk -v t="$total" -v n="$transactions" 'BEGIN {printf "%.0f", t / n}') instructions per transaction ($client $mode, $transactions transactions, $dump)"
  callgrind_annotate --inclusive=yes --threshold=100 "$dump" 2>/dev/null |
    awk -v top="${TOP:-40}" '/^-+$/ {sep++; next} sep >= 3 && NF && shown++ < top'
  floe_pid=
}

profile new "${FLOE_BENCH_FLOE:?FLOE_BENCH_FLOE names the floe binary to profile}"
[ -z "${FLOE_BENCH_BASE:-}" ] || profile base "$FLOE_BENCH_BASE"
