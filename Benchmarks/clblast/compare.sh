#!/usr/bin/env bash
# Latent's OpenCL SGEMM against CLBlast's on the same OpenCL device, in one script run,
# alternating the two so that a busy machine hurts both alike. Prints the medians over
# ROUNDS rounds and the ratio per size.
#   Benchmarks/clblast/compare.sh [ROUNDS] [DEVICE]   (default 3 rounds, device 0 = PoCL here)
# LATENT_SCRATCH_PATH picks the build folder (default .build).
# Needs libclblast-dev (and an OpenCL driver: pocl-opencl-icd on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds="${1:-3}"
device="${2:-0}"
out=$(mktemp -d)
cc -O2 -o "$out/sgemm_clblast" Benchmarks/clblast/sgemm_clblast.c -lclblast -lOpenCL
scratch="${LATENT_SCRATCH_PATH:-.build}"
swift build -c release --scratch-path "$scratch" --product latent >/dev/null
for round in $(seq 1 "$rounds"); do
    "$scratch/release/latent" bench ops --backend opencl --device "$device" --group sgemm --json > "$out/latent-$round.json"
    "$out/sgemm_clblast" "$device" 256 512 1024 2048 > "$out/clblast-$round.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
latent = [json.load(open(f"{out}/latent-{r}.json")) for r in range(1, rounds + 1)]
clblast = [json.load(open(f"{out}/clblast-{r}.json")) for r in range(1, rounds + 1)]
print(f"device: {latent[0]['device']}")
print(f"CLBlast device: {clblast[0]['device']}; {rounds} round(s), medians")
print("| size | Latent OpenCL GFLOP/s | CLBlast GFLOP/s | Latent / CLBlast |")
print("|---|---|---|---|")
for size in ("256", "512", "1024", "2048"):
    ours = statistics.median(r["gflops"] for run in latent for r in run["results"] if r["op"] == "sgemm" and r["shape"] == f"{size}^3")
    theirs = statistics.median(run["gflops"][size] for run in clblast)
    print(f"| {size}^3 | {ours:.0f} | {theirs:.0f} | {ours / theirs:.1f}x |")
PY
