#!/usr/bin/env python3
"""A/B of `latent bench ops` between builds or settings, run alternately so that a busy
machine hurts every side alike. Prints, per op row, the median milliseconds of each side over
the rounds and the ratios first / other (above 1: the other side is faster).

    Benchmarks/compare-ops.py ROUNDS GROUPS FILTER SIDE [SIDE ...]
    Benchmarks/compare-ops.py 5 linear vae-fc LATENT_CPU_PACKA=1:.build/release/latent .build/release/latent
    Benchmarks/compare-ops.py 3 elementwise "" /tmp/latent-old .build/release/latent

A SIDE is a `latent` binary, optionally preceded by environment settings and a colon
(`NAME=VALUE,NAME2=VALUE2:binary`). THREADS sets --threads (default 2); BACKEND the backend
(default cpu; `BACKEND=opencl` for the OpenCL rows, e.g. between LATENT_OPENCL_TUNE settings);
STAT=min prints the fastest round instead of the median (for a machine whose neighbours come
and go). Every other round runs the sides in reverse order. On the shared
machines here the same binary differs by up to 1.5x between rounds on sub-millisecond rows:
read small differences with that in mind, and use more rounds.
"""
import json
import os
import statistics
import subprocess
import sys


def parse(side):
    env = dict(os.environ)
    binary = side
    if ":" in side:
        settings, binary = side.split(":", 1)
        for pair in filter(None, settings.split(",")):
            name, value = pair.split("=", 1)
            env[name] = value
    return env, binary


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    rounds, groups, text, sides = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    times = {side: {} for side in sides}
    for round in range(rounds):
        # Every other round runs the sides in reverse, so that neither always goes first.
        for side in (sides if round % 2 == 0 else list(reversed(sides))):
            env, binary = parse(side)
            command = [binary, "bench", "ops", "--backend", os.environ.get("BACKEND", "cpu"),
                       "--threads", os.environ.get("THREADS", "2"), "--group", groups, "--json"]
            if text:
                command += ["--filter", text]
            result = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
            for row in result["results"]:
                times[side].setdefault(f"{row['op']} {row['shape']}", []).append(row["milliseconds"])
    print("| op | " + " | ".join(f"{side} ms" for side in sides) + " | " +
          " | ".join(f"first / {i + 2}" for i in range(len(sides) - 1)) + " |")
    print("|---" * (2 * len(sides)) + "|")
    for key in times[sides[0]]:
        pick = min if os.environ.get("STAT") == "min" else statistics.median
        medians = [pick(times[side][key]) for side in sides]
        ratios = [medians[0] / m for m in medians[1:]]
        print(f"| {key} | " + " | ".join(f"{m:.3f}" for m in medians) + " | " +
              " | ".join(f"{r:.2f}" for r in ratios) + " |")


if __name__ == "__main__":
    main()
