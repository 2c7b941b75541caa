#!/usr/bin/env python3
"""Plots bench/MoeLayerBench's JSON beside the reference engines' figures.

    build/bench/MoeLayerBench --benchmark_out=bench.json --benchmark_out_format=json
    python3 scripts/plot_bench.py bench.json -o docs/bench.png \
        [--ref ../shared/perf/cpu-moe-2026-12-01-zen2.csv ...] \
        [--ref ../shared/perf/cpu-moe-2026-11-23.csv:446]

One panel per (layer, weight type): throughput against T (tokens) as a
fraction of the FP32 FMA peak measured in the same run (moe: the benchmark's
own `frac_fma_peak`; a reference CSV: its GFLOP/s over the median FMA peak its
header's probe lines report, or over PEAK given as `--ref PATH:PEAK` for a
CSV without probe lines), so figures from different hosts and sittings
compare. Reference CSVs are the two formats of ../shared/perf/ (with or
without a `variant` column); their engines are drawn dashed.
"""
import argparse
import csv
import json
import re
import statistics
import sys
from collections import defaultdict

LAYER_ALIASES = {"qwen3moe": "qwen3", "gpt-oss": "gptoss", "gemma4": "gemma4"}


def load_moe(path):
    """{(layer, type): [(T, frac_fma_peak, gflops)]} from a benchmark JSON."""
    with open(path) as f:
        data = json.load(f)
    out = defaultdict(list)
    for b in data.get("benchmarks", []):
        m = re.match(r"moe/([^/]+)/([^/]+)/T:(\d+)", b.get("name", ""))
        if not m or b.get("error_occurred"):
            continue
        if "frac_fma_peak" not in b:
            continue
        out[(m.group(1), m.group(2))].append(
            (int(m.group(3)), float(b["frac_fma_peak"]), float(b.get("gflops", 0))))
    return out


def load_ref(spec):
    """{(engine, layer, type): [(T, fraction of the sitting's FMA peak)]}."""
    path, _, given = spec.partition(":")
    peaks = [float(given)] if given else []
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                if not given:
                    peaks += [float(p) for p in
                          re.findall(r"fma_peak widest(?:\([^)]*\))?: threads=2 ([0-9.]+) GFLOP/s",
                                     line)]
            else:
                rows.append(line)
    if not peaks:
        sys.exit(f"{path}: no 'fma_peak widest: threads=2 ... GFLOP/s' probe line; "
                 f"give the peak as {path}:GFLOPS")
    peak = statistics.median(peaks)
    out = defaultdict(list)
    for r in csv.DictReader(rows):
        if r.get("threads", "2") != "2":
            continue
        engine = r["engine"]
        if r.get("variant"):
            engine += " " + r["variant"]
        layer = LAYER_ALIASES.get(r["arch"], r["arch"])
        gflops = float(r.get("gflops") or r.get("gflops_median"))
        out[(engine, layer, r["type"])].append((int(r["T"]), gflops / peak))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", help="MoeLayerBench --benchmark_out JSON")
    ap.add_argument("-o", "--output", default="bench.png")
    ap.add_argument("--ref", action="append", default=[],
                    help="reference CSV[:FMA peak GFLOP/s] (repeatable)")
    args = ap.parse_args()

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    moe = load_moe(args.json)
    if not moe:
        sys.exit(f"{args.json}: no moe/<layer>/<type>/T:<n> benchmark with frac_fma_peak")
    refs = {}
    for spec in args.ref:
        name = spec.partition(":")[0].rsplit("/", 1)[-1].removesuffix(".csv")
        for k, v in load_ref(spec).items():
            refs[(k[0] + " (" + name + ")",) + k[1:]] = v
    panels = sorted(moe)
    cols = min(4, len(panels))
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.4 * rows), squeeze=False)
    for ax, (layer, wtype) in zip(axes.flat, panels):
        pts = sorted(moe[(layer, wtype)])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", lw=2, label="moe")
        for (engine, rl, rt), rp in sorted(refs.items()):
            if rl == layer and rt == wtype:
                rp = sorted(rp)
                ax.plot([p[0] for p in rp], [p[1] for p in rp], "--", marker=".", label=engine)
        ax.set_title(f"{layer} {wtype}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("T (tokens)")
        ax.set_ylabel("fraction of FP32 FMA peak")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
