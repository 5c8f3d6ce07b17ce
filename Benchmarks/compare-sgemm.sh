#!/usr/bin/env bash
# Latent's SGEMM against numpy and torch in one go, alternating runs so that a busy core
# hurts both sides alike. Prints the medians over REPEATS rounds and the ratios.
#   Benchmarks/compare-sgemm.sh [REPEATS]   (default 3; needs numpy, optionally torch)
#   LATENT=.build-perf/release/latent Benchmarks/compare-sgemm.sh 3   (a binary built elsewhere)
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-3}"
if [ -z "${LATENT:-}" ]; then
    swift build -c release --product latent >/dev/null
    LATENT=.build/release/latent
fi
out=$(mktemp -d)
echo "$(uptime)" >&2
for round in $(seq 1 "$repeats"); do
    "$LATENT" bench ops --backend cpu --threads 2 --group sgemm --json > "$out/latent-$round.json"
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 Benchmarks/pytorch/sgemm_reference.py --threads 2 > "$out/python-$round.json"
done
python3 - "$out" "$repeats" <<'PY'
import json, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
latent = [json.load(open(f"{out}/latent-{r}.json")) for r in range(1, repeats + 1)]
python = [json.load(open(f"{out}/python-{r}.json")) for r in range(1, repeats + 1)]
peak = statistics.median(run["peak_gflops"] for run in latent)
loads = [run.get("load_average") for run in latent if run.get("load_average") is not None]
print(f"measured FP32 peak (2 threads): {peak:.0f} GFLOP/s; nominal: {latent[0]['nominal_peak_gflops']:.0f}; numpy BLAS: {python[0].get('blas')}; "
      f"load {min(loads):.1f}-{max(loads):.1f}" if loads else "")
print("| size | Latent GFLOP/s | share of peak | numpy GFLOP/s | torch GFLOP/s | Latent / numpy | Latent / torch |")
print("|---|---|---|---|---|---|---|")
for size in ("256", "512", "1024", "2048"):
    ours = statistics.median(r["gflops"] for run in latent for r in run["results"] if r["op"] == "sgemm" and r["shape"] == f"{size}^3")
    numpy = statistics.median(run["numpy"][size] for run in python)
    torch_values = [run["torch"][size] for run in python if size in run["torch"]]
    torch = statistics.median(torch_values) if torch_values else float("nan")
    print(f"| {size}^3 | {ours:.0f} | {ours / peak:.0%} | {numpy:.0f} | {torch:.0f} | {ours / numpy:.2f} | {ours / torch:.2f} |")
PY
