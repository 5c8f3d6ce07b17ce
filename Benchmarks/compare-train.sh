#!/usr/bin/env bash
# Training images/s of Latent against PyTorch, every model and backend in one go:
# for each of REPEATS rounds and each model, `latent bench train` and
# Benchmarks/pytorch/train_step_bench.py run back to back (alternating, so a busy core
# hurts both sides alike), each with warm-up steps and one timed run of STEPS steps.
# Prints the table of medians over the rounds and the ratio Latent / PyTorch, with the
# load average seen by every run, and leaves every JSON result in OUT.
#
#   Benchmarks/compare-train.sh [REPEATS] [STEPS]     (defaults 5 and 100)
#   MODELS="vae-conv dcgan" Benchmarks/compare-train.sh 3
#   LATENT=.build-perf/release/latent Benchmarks/compare-train.sh   (a binary built elsewhere)
#   OPENCL_MODELS="" Benchmarks/compare-train.sh                    (skip the OpenCL rows)
#   CHART=docs/images/train-ratio.png Benchmarks/compare-train.sh    (where the bar chart goes)
#
# Environment: LATENT_DATA or DATA (a folder holding mnist/; default ../shared/datasets),
# THREADS (2), OUT (a fresh temporary folder). Needs torch (pip install "torch==2.13.0+cpu").
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-5}"
steps="${2:-100}"
threads="${THREADS:-2}"
models="${MODELS:-vae-conv beta-vae vae-fc cvae gan-mlp dcgan}"
opencl_models="${OPENCL_MODELS-vae-conv}"
data="${DATA:-${LATENT_DATA:-../shared/datasets}}"
out="${OUT:-$(mktemp -d)}"
mkdir -p "$out"
# A reused OUT keeps no rounds of an earlier run beside this one's.
rm -f "$out"/latent-*.json "$out"/pytorch-*.json "$out"/summary.json "$out"/chart.json
if [ -z "${LATENT:-}" ]; then
    swift build -c release --product latent >/dev/null
    LATENT=.build/release/latent
fi
echo "results in $out; $(nproc) cores; $(uptime)" >&2
for round in $(seq 1 "$repeats"); do
    for model in $models; do
        "$LATENT" bench train "$model" --backend cpu --threads "$threads" --steps "$steps" --repeats 1 \
            --data "$data" --json > "$out/latent-cpu-$model-$round.json"
        python3 Benchmarks/pytorch/train_step_bench.py "$model" --threads "$threads" --steps "$steps" --repeats 1 \
            --data "$data" --json > "$out/pytorch-$model-$round.json"
    done
    for model in $opencl_models; do
        # PoCL runs on the same cores; fewer steps, since a step is slower there.
        "$LATENT" bench train "$model" --backend opencl --steps "$(( (steps + 1) / 2 ))" --repeats 1 \
            --data "$data" --json > "$out/latent-opencl-$model-$round.json"
    done
    echo "round $round done; $(uptime)" >&2
done
python3 - "$out" "$repeats" "$models" "$opencl_models" <<'PY'
import json, statistics, sys
out, repeats, models, opencl_models = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()

def runs(kind, model):
    return [json.load(open(f"{out}/{kind}-{model}-{r}.json")) for r in range(1, repeats + 1)]

def median(values):
    return statistics.median(values)

def loads(*groups):
    values = [run["load_average"] for group in groups for run in group if run.get("load_average") is not None]
    return f"{min(values):.1f}-{max(values):.1f}" if values else "?"

summary = {"repeats": repeats, "rows": []}
print(f"{repeats} alternating rounds; images/s medians (min-max over rounds)")
print()
print("| model | backend | batch | Latent images/s | PyTorch images/s | Latent / PyTorch | Latent peak RSS MiB | PyTorch peak RSS MiB | load |")
print("|---|---|---|---|---|---|---|---|---|")
cpu_rates = {}
for model in models:
    latent, torch = runs("latent-cpu", model), runs("pytorch", model)
    ours = [r["images_per_sec"] for r in latent]
    theirs = [r["images_per_sec"] for r in torch]
    cpu_rates[model] = median(ours)
    # Ratio of medians, and the median of the per-round ratios (each from adjacent runs).
    ratio = median(ours) / median(theirs)
    paired = median([a / b for a, b in zip(ours, theirs)])
    summary["rows"].append({"model": model, "backend": "cpu", "latent": median(ours), "pytorch": median(theirs),
                            "ratio": ratio, "paired_ratio": paired,
                            "latent_rss_mb": median(r["peak_rss_mb"] for r in latent),
                            "pytorch_rss_mb": median(r["peak_rss_mb"] for r in torch), "load": loads(latent, torch)})
    print(f"| {model} | cpu | {latent[0]['batch_size']} | {median(ours):.0f} ({min(ours):.0f}-{max(ours):.0f}) "
          f"| {median(theirs):.0f} ({min(theirs):.0f}-{max(theirs):.0f}) | **{ratio:.2f}x** (paired {paired:.2f}x) "
          f"| {median(r['peak_rss_mb'] for r in latent):.0f} | {median(r['peak_rss_mb'] for r in torch):.0f} | {loads(latent, torch)} |")
for model in opencl_models:
    latent = runs("latent-opencl", model)
    ours = [r["images_per_sec"] for r in latent]
    versus = f"{median(ours) / cpu_rates[model]:.2f}x the CPU backend" if model in cpu_rates else ""
    summary["rows"].append({"model": model, "backend": "opencl", "latent": median(ours),
                            "versus_cpu": median(ours) / cpu_rates[model] if model in cpu_rates else None,
                            "load": loads(latent)})
    print(f"| {model} | opencl ({latent[0]['device']}) | {latent[0]['batch_size']} | {median(ours):.0f} ({min(ours):.0f}-{max(ours):.0f}) "
          f"| | {versus} | {median(r['peak_rss_mb'] for r in latent):.0f} | | {loads(latent)} |")
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)
cpu_rows = [row for row in summary["rows"] if row["backend"] == "cpu"]
json.dump({"title": "Training speed, Latent / PyTorch", "y_label": "images/s ratio (CPU, 2 threads)",
           "categories": [row["model"] for row in cpu_rows],
           "series": [{"name": "Latent / PyTorch", "values": [row["ratio"] for row in cpu_rows]}],
           "reference_lines": [{"value": 1.0, "label": "PyTorch = 1"}], "value_format": "%.2fx"},
          open(f"{out}/chart.json", "w"))
PY
"$LATENT" bench chart --input "$out/chart.json" --output "${CHART:-$out/train-ratio.png}"
echo "chart: ${CHART:-$out/train-ratio.png}; summary: $out/summary.json" >&2
