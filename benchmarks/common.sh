# Helpers shared by pgbench.sh and sysbench.sh (sourced, not run).

# CPU seconds a process has used (user + system), from /proc; 0 for pid 0.
cpu_seconds() {
  [ "$1" = 0 ] && { echo 0; return; }
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.3f", ($14 + $15) / hz}' "/proc/$1/stat"
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
