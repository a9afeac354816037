# Helpers shared by pgbench.sh, sysbench.sh and callgrind.sh (sourced, not run).

# CPU seconds a process has used (user + system), from /proc; 0 for pid 0.
cpu_seconds() {
  [ "$1" = 0 ] && { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
}

# Starts `floe-bench forward` ($1) on 127.0.0.1:$2 to $3:$4 with the clients'
# runtime threads Floe gets, in the background; sets floor_pid.
start_floor() {
  "$1" forward --listen "127.0.0.1:$2" --to "$(getent ahostsv4 "$3" | awk 'NR == 1 {print $1}'):$4" \
    --threads "${FLOE_BENCH_WORKER_THREADS:-0}" &
  floor_pid=$!
}

# One run through a target: runs the command after the name and pid, which
# prints "tps latency_ms" (or "error"), and prints "name tps latency_ms
# cpu_us_per_txn" (the CPU time of process pid, 0 for the server direct) or
# "name error".
measure() { # name pid command...
  local name=$1 pid=$2 before after tps lat
  shift 2
  before="$(cpu_seconds "$pid")"
  read -r tps lat <<<"$("$@")" || true
  after="$(cpu_seconds "$pid")"
  if [ "$tps" = error ]; then
    echo "$name error"
    return
  fi
  awk -v n="$name" -v t="$tps" -v l="$lat" -v a="$after" -v b="$before" -v s="$secs" \
    'BEGIN { printf "%s %s %s %.1f\n", n, t, l, (t > 0 ? (a - b) * 1e6 / (t * s) : 0) }'
}

# Reads lines "target tps latency_ms cpu_us_per_txn" (several runs per target)
# from the file $1 and prints each target's medians: "target tps latency cpu".
medians() {
  awk '
    function median(list,   n, v, i, j, x) {
      n = split(list, v, " ")
      for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { x = v[j]; v[j] = v[j - 1]; v[j - 1] = x }
      return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
    }
    !($1 in tps) { order[++targets] = $1 }
    { tps[$1] = tps[$1] " " $2; lat[$1] = lat[$1] " " $3; cpu[$1] = cpu[$1] " " $4 }
    END {
      for (i = 1; i <= targets; i++) {
        t = order[i]
        printf "%s %s %s %s\n", t, median(tps[t]), median(lat[t]), median(cpu[t])
      }
    }' "$1"
}

# Writes $1/$2.toml: Floe as the benchmarks run it — front end $3
# (`postgres` or `mysql`) on 127.0.0.1:$4, one engine of that kind at $5 (a
# PostgreSQL conninfo or a MySQL URL), data in $1/$2-data, no demo, warnings
# only; the other front ends on ports of their own (0), so that two builds
# run side by side. A MySQL engine's database ($6) is the default schema.
# FLOE_BENCH_ENGINE_EXTRA: lines added to the engine's section (e.g.
# `pass_through = false`); FLOE_BENCH_BASE_ENGINE_EXTRA: the same for the
# `base` build only, so that one binary can be its own A/B.
# FLOE_BENCH_ENGINE_URL / FLOE_BENCH_BASE_ENGINE_URL: another engine URL
# (e.g. the server's Unix socket: `mysql://root@localhost/floe_sysbench?socket=/run/mysqld/mysqld.sock`,
# `host=/var/run/postgresql user=postgres dbname=floe_pgbench`).
floe_config() { # dir name frontend port url [mysql database]
  local dir=$1 name=$2 frontend=$3 port=$4 url=$5 engine
  local extra=${FLOE_BENCH_ENGINE_EXTRA:-}
  url=${FLOE_BENCH_ENGINE_URL:-$url}
  if [ "$name" = base ]; then
    extra=${FLOE_BENCH_BASE_ENGINE_EXTRA:-$extra}
    url=${FLOE_BENCH_BASE_ENGINE_URL:-$url}
  fi
  {
    cat <<EOF
[server]
data_dir = "$dir/$name-data"
worker_threads = ${FLOE_BENCH_WORKER_THREADS:-0}
[listen]
EOF
    for f in postgres mysql flight_sql admin; do
      if [ "$f" = "$frontend" ]; then echo "$f = \"127.0.0.1:$port\""; else echo "$f = \"127.0.0.1:0\""; fi
    done
    cat <<EOF
[demo]
enabled = false
[logging]
level = "warn"
EOF
    if [ "$frontend" = mysql ]; then
      engine=maria
      printf '[routing]\ndefault_schema = "%s"\n' "$6"
    else
      engine=pg
    fi
    cat <<EOF
[[engines]]
name = "$engine"
type = "$frontend"
url = "$url"
max_connections = 16
$extra
EOF
  } >"$dir/$name.toml"
}
