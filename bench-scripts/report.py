#!/usr/bin/env python3
"""Turns a compare.sh CSV into a markdown table (with percore/nutcracker ratios) and a chart.

Usage: report.py RESULTS.csv OUT.md OUT.png

The chart needs matplotlib; it is installed with pip when missing (the table does not).
"""
import csv
import subprocess
import sys


def load(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def ratio(a, b):
    a, b = num(a), num(b)
    return f"{a / b:.2f}" if a is not None and b else "-"


def table(rows):
    out = [
        "| test | P | size | target | req/s | p50 ms | p99 ms | proxy CPU µs/req | backend CPU µs/req | flag |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['test']} | {r['pipeline']} | {r['size']} | {r['target']} | {r['rps']} | {r['p50_ms']} "
            f"| {r['p99_ms']} | {r['proxy_cpu_us_per_req'] or '-'} | {r['backend_cpu_us_per_req']} | {r['flag']} |"
        )
    out += ["", "Ratios, percore 1 thread against nutcracker in the same run:", ""]
    out += ["| test | P | size | CPU/req ratio | req/s ratio | p50 ratio | p99 ratio |", "|---|---|---|---|---|---|---|"]
    by_key = {}
    for r in rows:
        by_key.setdefault((r["test"], r["pipeline"], r["size"]), {})[r["target"]] = r
    for (test, pipeline, size), targets in by_key.items():
        p, n = targets.get("percore-1t"), targets.get("nutcracker")
        if not p or not n:
            continue
        out.append(
            f"| {test} | {pipeline} | {size} | {ratio(p['proxy_cpu_us_per_req'], n['proxy_cpu_us_per_req'])} "
            f"| {ratio(p['rps'], n['rps'])} | {ratio(p['p50_ms'], n['p50_ms'])} | {ratio(p['p99_ms'], n['p99_ms'])} |"
        )
    return "\n".join(out) + "\n"


def chart(rows, path):
    try:
        import matplotlib
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "matplotlib"], check=False)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib unavailable: no chart", file=sys.stderr)
        return
    proxies = [t for t in ["nutcracker", "percore-1t", "percore-2t"] if any(r["target"] == t for r in rows)]
    keys = []
    for r in rows:
        k = (r["test"], r["pipeline"], r["size"])
        if k not in keys:
            keys.append(k)
    fig, axes = plt.subplots(1, 2, figsize=(14, 5))
    width = 0.8 / max(len(proxies), 1)
    for i, target in enumerate(proxies):
        cpu, rps = [], []
        for k in keys:
            match = [r for r in rows if (r["test"], r["pipeline"], r["size"]) == k and r["target"] == target]
            cpu.append(num(match[0]["proxy_cpu_us_per_req"]) or 0 if match else 0)
            rps.append((num(match[0]["rps"]) or 0) / 1000 if match else 0)
        xs = [x + i * width for x in range(len(keys))]
        axes[0].bar(xs, cpu, width, label=target)
        axes[1].bar(xs, rps, width, label=target)
    labels = [f"{t} P{p} d{s}" for t, p, s in keys]
    for ax, title in zip(axes, ["proxy CPU µs per request (lower is better)", "thousand requests/s (higher is better)"]):
        ax.set_xticks([x + width * (len(proxies) - 1) / 2 for x in range(len(keys))])
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    rows = load(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        f.write(table(rows))
    chart(rows, sys.argv[3])


if __name__ == "__main__":
    main()
