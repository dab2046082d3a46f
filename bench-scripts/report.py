#!/usr/bin/env python3
"""Turns a compare.sh CSV into a markdown table (with every target's ratios to nutcracker and to
predixy) and a chart.

Usage: report.py RESULTS.csv OUT.md OUT.png [NOTE]

NOTE (compare.sh: where the backends were, loopback or a delayed network) heads the table.

The chart needs matplotlib; it is installed with pip when missing (the table does not).
"""
import csv
import re
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


FIELDS = ["rps", "p50_ms", "p99_ms", "proxy_cpu_us_per_req", "backend_cpu_us_per_req", "relay_cpu_us_per_req"]


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def fmt(value):
    if value is None:
        return "-"
    return f"{value:.0f}" if value >= 1000 else f"{value:.3g}" if value < 10 else f"{value:.1f}"


def summarize(rows):
    """One row per (test, pipeline, size, target): the median of each field over the rounds,
    how many rounds ran, and how many were flagged busy."""
    groups = {}
    for r in rows:
        groups.setdefault((r["test"], r["pipeline"], r["size"], r["target"]), []).append(r)
    out = []
    for (test, pipeline, size, target), runs in groups.items():
        row = {"test": test, "pipeline": pipeline, "size": size, "target": target, "rounds": len(runs)}
        for field in FIELDS:
            row[field] = median(num(r.get(field)) for r in runs)
        row["busy"] = sum(r["flag"] == "busy" for r in runs)
        row["failed"] = sum(r["flag"] == "failed" for r in runs)
        out.append(row)
    return out


# What every other target is measured against, each in a table of its own when it ran: the
# proxy percore replaces, and the fastest cluster proxy we know of.
BASES = ["nutcracker", "predixy"]
# Order of the ratio tables' targets; any other (peer-<name>) follows, by name.
TARGET_ORDER = ["pool-1t", "pool-2t", "percore-1t", "percore-2t", "predixy", "nutcracker", "redis"]
# TLS lines: percore with TLS to its clients, against redis-server's own TLS (req/s, latency)
# and against the same percore without TLS (CPU per request: what TLS costs the proxy).
TLS_PAIRS = [("percore-tls-1t", "redis-tls", "percore-1t"), ("percore-tls-2t", "redis-tls", "percore-2t")]


def ordered_targets(rows, base):
    """Every target but `base`, the known ones first in TARGET_ORDER, then the rest by name."""
    seen = {r["target"] for r in rows} - {base}
    known = [t for t in TARGET_ORDER if t in seen]
    return known + sorted(seen - set(known))


def round_ratios_to(rows, key, target, base, field):
    """`target` / `base` for `field` on the line `key`, one per round where both ran (failed
    runs have no value and pair with nothing). A ratio is only taken within a round, never
    across rounds: noise on a shared machine moves a whole round, which a ratio cancels."""
    by_round = {}
    for r in rows:
        if (r["test"], r["pipeline"], r["size"]) == key:
            by_round.setdefault(r.get("round", "1"), {})[r["target"]] = num(r[field])
    return [t[target] / t[base] for t in by_round.values()
            if t.get(target) is not None and t.get(base)]


def tls_lines(rows, keys):
    """For each TLS percore target that ran: req/s and p50 over redis-server's own TLS, and
    proxy CPU per request over the same percore without TLS, round by round."""
    targets = {r["target"] for r in rows}
    out = []
    for key in keys:
        for tls, direct, plain in TLS_PAIRS:
            if tls not in targets:
                continue
            cells = [ratio_cell(round_ratios_to(rows, key, tls, direct, f)) for f in ("rps", "p50_ms")]
            cells.append(ratio_cell(round_ratios_to(rows, key, tls, plain, "proxy_cpu_us_per_req")))
            if any(c != "-" for c in cells):
                out.append(f"| {key[0]} | {key[1]} | {key[2]} | {tls} | " + " | ".join(cells) + " |")
    return out


def ratio_cell(ratios):
    if not ratios:
        return "-"
    mid = median(ratios)
    return f"{mid:.2f} ({min(ratios):.2f}-{max(ratios):.2f})" if len(ratios) > 1 else f"{mid:.2f}"


def table(rows, note=None):
    summary = summarize(rows)
    # The relays' CPU (compare.sh's NET_DELAY_US without netem) has a column only when measured.
    relay = any(r["relay_cpu_us_per_req"] is not None for r in summary)
    out = [note, ""] if note else []
    out += [
        "Medians over the rounds (targets take turns within each round).",
        "",
        "| test | P | size | target | req/s | p50 ms | p99 ms | proxy CPU µs/req | backend CPU µs/req |"
        + (" relay CPU µs/req |" if relay else "") + " rounds (busy) |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if relay else "") + "---|",
    ]
    for r in summary:
        out.append(
            f"| {r['test']} | {r['pipeline']} | {r['size']} | {r['target']} | {fmt(r['rps'])} | {fmt(r['p50_ms'])} "
            f"| {fmt(r['p99_ms'])} | {fmt(r['proxy_cpu_us_per_req'])} | {fmt(r['backend_cpu_us_per_req'])} "
            + (f"| {fmt(r['relay_cpu_us_per_req'])} " if relay else "")
            + f"| {r['rounds']} ({r['busy']}){' FAILED ' + str(r['failed']) if r['failed'] else ''} |"
        )
    keys = []
    for r in summary:
        if (r["test"], r["pipeline"], r["size"]) not in keys:
            keys.append((r["test"], r["pipeline"], r["size"]))
    for base in BASES:
        if not any(r["target"] == base for r in rows):
            continue
        out += ["", f"Ratios, target / {base}, per round in the same run: median (min-max).", ""]
        out += ["| test | P | size | target | CPU/req | req/s | p50 | p99 |", "|---|---|---|---|---|---|---|---|"]
        for key in keys:
            for target in ordered_targets(rows, base):
                fields = ["proxy_cpu_us_per_req", "rps", "p50_ms", "p99_ms"]
                cells = [ratio_cell(round_ratios_to(rows, key, target, base, f)) for f in fields]
                # redis has no proxy CPU but still has req/s and latency ratios; a line the base
                # did not run (RESP3) has none at all.
                if all(c == "-" for c in cells):
                    continue
                out.append(f"| {key[0]} | {key[1]} | {key[2]} | {target} | " + " | ".join(cells) + " |")
    tls = tls_lines(rows, keys)
    if tls:
        out += ["", "TLS, per round: req/s and p50 over redis-tls; proxy CPU/req over the same percore without TLS.", ""]
        out += ["| test | P | size | target | req/s | p50 | CPU/req vs plain |", "|---|---|---|---|---|---|---|"]
        out += tls
    resp3 = resp3_lines(rows, keys)
    if resp3:
        out += ["", "RESP3 / RESP2 of the same target and line, per round: median (min-max).", ""]
        out += ["| test | P | size | target | CPU/req | req/s |", "|---|---|---|---|---|---|"]
        out += resp3
    clients = clients_lines(rows, keys)
    if clients:
        out += ["", "Many clients: each target's line of N clients over its line of 50, per round: median (min-max).", ""]
        out += ["| test | P | size | clients | target | CPU/req | req/s | p99 |", "|---|---|---|---|---|---|---|---|"]
        out += clients
    return "\n".join(out) + "\n"


# compare.sh names a line of other than 50 clients `<test>-c<N>` (before any `-resp3`).
CLIENTS_LABEL = re.compile(r"^(.*)-c(\d+)(-resp3)?$")


def variant_ratios(rows, target, tests, line, field):
    """`target`'s `field` on test `tests[0]` over the same on `tests[1]` (a variant of a line
    over the plain line: N clients, RESP3), with the same pipeline and size (`line`), one ratio
    per round where both ran."""
    test, plain = tests
    by_round = {}
    for r in rows:
        if r["target"] == target and (r["pipeline"], r["size"]) == line and r["test"] in tests:
            by_round.setdefault(r.get("round", "1"), {})[r["test"]] = num(r[field])
    return [v[test] / v[plain] for v in by_round.values() if v.get(test) and v.get(plain)]


def clients_lines(rows, keys):
    """For every line run with N clients (`get-c10000`) and with 50 (`get`): each target's
    N / 50 ratio of CPU per request, req/s and p99, round by round."""
    out = []
    targets = sorted({r["target"] for r in rows})
    for test, pipeline, size in keys:
        m = CLIENTS_LABEL.match(test)
        if not m:
            continue
        plain = m.group(1) + (m.group(3) or "")
        for target in targets:
            cells = []
            for field in ["proxy_cpu_us_per_req", "rps", "p99_ms"]:
                cells.append(ratio_cell(variant_ratios(rows, target, (test, plain), (pipeline, size), field)))
            if any(c != "-" for c in cells):
                out.append(f"| {plain} | {pipeline} | {size} | {m.group(2)} | {target} | " + " | ".join(cells) + " |")
    return out


def resp3_lines(rows, keys):
    """For every line run in both protocols (`get` and `get-resp3`): each target's RESP3 /
    RESP2 ratio of CPU per request and of req/s, round by round."""
    out = []
    targets = sorted({r["target"] for r in rows})
    for test, pipeline, size in keys:
        if not test.endswith("-resp3"):
            continue
        plain = test[: -len("-resp3")]
        for target in targets:
            cells = []
            for field in ["proxy_cpu_us_per_req", "rps"]:
                cells.append(ratio_cell(variant_ratios(rows, target, (test, plain), (pipeline, size), field)))
            if cells[0] != "-" or cells[1] != "-":
                out.append(f"| {plain} | {pipeline} | {size} | {target} | " + " | ".join(cells) + " |")
    return out


def chart(rows, path):
    rows = summarize(rows)
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
    proxies = []
    for r in rows:
        if r["target"] != "redis" and r["target"] not in proxies:
            proxies.append(r["target"])
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
            cpu.append(match[0]["proxy_cpu_us_per_req"] or 0 if match else 0)
            rps.append((match[0]["rps"] or 0) / 1000 if match else 0)
        xs = [x + i * width for x in range(len(keys))]
        axes[0].bar(xs, cpu, width, label=target)
        axes[1].bar(xs, rps, width, label=target)
    labels = [f"{t} P{p} d{s}" for t, p, s in keys]
    for ax, title in zip(axes, ["proxy CPU µs per request, median (lower is better)", "thousand requests/s, median (higher is better)"]):
        ax.set_xticks([x + width * (len(proxies) - 1) / 2 for x in range(len(keys))])
        ax.set_xticklabels(labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(title)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    rows = load(sys.argv[1])
    with open(sys.argv[2], "w") as f:
        f.write(table(rows, sys.argv[4] if len(sys.argv) > 4 else None))
    chart(rows, sys.argv[3])


if __name__ == "__main__":
    main()
