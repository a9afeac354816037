"""Plots `floe-bench lake`'s timelines: hot-query latency and bytes scanned
over time, adaptive maintenance off vs on. Usage: plot_lake.py LATENCY_CSV SCANNED_CSV OUT_PNG"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def series(path, column):
    out = {"off": ([], []), "on": ([], [])}
    with open(path) as f:
        for row in csv.DictReader(f):
            xs, ys = out[row["mode"]]
            xs.append(float(row["t_s"]))
            ys.append(float(row[column]))
    return out


def rolling(xs, ys, window=25):
    out = []
    for i in range(len(ys)):
        chunk = sorted(ys[max(0, i - window + 1) : i + 1])
        out.append(chunk[len(chunk) // 2])
    return xs, out


latency = series(sys.argv[1], "latency_ms")
scanned = series(sys.argv[2], "scanned_bytes")
fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True)
for mode, colour in (("off", "tab:red"), ("on", "tab:green")):
    xs, ys = rolling(*latency[mode])
    top.plot(xs, ys, label=f"adaptive maintenance {mode}", color=colour)
    xs, ys = scanned[mode]
    bottom.plot(xs, [y / 1048576 for y in ys], ".", markersize=2, color=colour, label=f"adaptive {mode}")
top.set_ylabel("hot query latency, ms (rolling median)")
top.set_yscale("log")
top.legend()
top.set_title("Floe: a lake under load (small appends every 2 s, queries on user_id)")
bottom.set_ylabel("bytes scanned per query, MiB")
bottom.set_yscale("log")
bottom.set_xlabel("seconds since the workload started")
fig.tight_layout()
fig.savefig(sys.argv[3], dpi=100)
