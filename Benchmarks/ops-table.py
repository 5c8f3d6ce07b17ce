#!/usr/bin/env python3
"""Markdown table of `latent bench ops --json` results: one row per op with time, rate and
share of the measured peak, one column group per backend (the first file's rows lead).

    latent bench ops --backend cpu --json > cpu.json
    latent bench ops --backend opencl --json > opencl.json
    python3 Benchmarks/ops-table.py cpu.json opencl.json [--group conv]

A file argument may list several runs of one backend, comma-separated
(`cpu-1.json,cpu-2.json,cpu-3.json`): each row then takes the fastest run, and the peaks the
highest measured, against which the shares are recomputed (on a noisy machine the fastest of
a few runs is the best estimate of what the code can do).
"""
import argparse
import json


def rate(row):
    if row.get("gflops") is not None:
        return f"{row['gflops']:.0f} GFLOP/s"
    return f"{row['gbps']:.1f} GB/s"


def fastest(runs):
    """One run of a backend from several: per row the fastest, the highest peaks, shares against those."""
    if len(runs) == 1:
        return runs[0]
    best = dict(runs[0])
    best["peak_gflops"] = max(run["peak_gflops"] for run in runs)
    best["peak_gbps"] = max(run["peak_gbps"] for run in runs)
    loads = [run["load_average"] for run in runs if run.get("load_average") is not None]
    best["load_average"] = max(loads) if loads else None
    rows = []
    for row in runs[0]["results"]:
        same = [r for run in runs for r in run["results"] if (r["op"], r["shape"]) == (row["op"], row["shape"])]
        row = dict(min(same, key=lambda r: r["milliseconds"]))
        if row.get("gflops") is not None:
            row["peak_share"] = row["gflops"] / best["peak_gflops"]
        elif row.get("gbps") is not None:
            row["peak_share"] = row["gbps"] / best["peak_gbps"]
        rows.append(row)
    best["results"] = rows
    return best


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("files", nargs="+")
    parser.add_argument("--group", help="only this group (sgemm, conv, linear, batchnorm, elementwise)")
    args = parser.parse_args()
    runs = [fastest([json.load(open(path)) for path in group.split(",")]) for group in args.files]
    for run in runs:
        load = run.get("load_average")
        print(f"- {run['backend']}: {run['device']}; FP32 peak {run['peak_gflops']:.0f} GFLOP/s measured "
              f"(nominal {run['nominal_peak_gflops']:.0f}), copy bandwidth {run['peak_gbps']:.1f} GB/s"
              + (f"; load up to {load:.2f}" if load is not None else ""))
    print()
    header = "| op | shape |" + "".join(f" {run['backend']} ms | {run['backend']} rate | share of peak |" for run in runs)
    print(header)
    print("|---|---|" + "---|---|---|" * len(runs))
    keyed = [{(r["op"], r["shape"]): r for r in run["results"]} for run in runs]
    for row in runs[0]["results"]:
        if args.group and row.get("group") != args.group:
            continue
        cells = []
        for table in keyed:
            other = table.get((row["op"], row["shape"]))
            cells.append(f" {other['milliseconds']:.3f} | {rate(other)} | {other['peak_share'] * 100:.0f}% |" if other else " | | |")
        print(f"| {row['op']} | {row['shape']} |" + "".join(cells))


if __name__ == "__main__":
    main()
