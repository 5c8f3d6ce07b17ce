#!/usr/bin/env bash
# Peak resident memory (and wall time) of one training epoch, Latent against PyTorch, run
# one after the other: `latent train MODEL` and Benchmarks/pytorch/train_reference.py, both
# on the same MNIST training set (LIMIT images, default all 60000) with the catalogue's
# hyperparameters, each under /usr/bin/time (max RSS in KiB).
#   Benchmarks/compare-memory.sh [MODEL]        (default vae-conv)
#   LIMIT=12800 LATENT=.build-perf/release/latent Benchmarks/compare-memory.sh vae-conv
# Environment: DATA or LATENT_DATA (a folder holding mnist/; default ../shared/datasets), THREADS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-vae-conv}"
threads="${THREADS:-2}"
data="${DATA:-${LATENT_DATA:-../shared/datasets}}"
if [ -z "${LATENT:-}" ]; then
    swift build -c release --product latent >/dev/null
    LATENT=.build/release/latent
fi
out=$(mktemp -d)
limit_args=(); [ -n "${LIMIT:-}" ] && limit_args=(--limit "$LIMIT")
echo "$(uptime)"
/usr/bin/time -f "%M %e" -o "$out/latent.time" "$LATENT" train "$model" --epochs 1 --backend cpu --threads "$threads" \
    --data "$data" --out "$out/run" --quiet "${limit_args[@]}"
/usr/bin/time -f "%M %e" -o "$out/pytorch.time" python3 Benchmarks/pytorch/train_reference.py "$model" --epochs 1 \
    --threads "$threads" --data "$data" "${limit_args[@]}" > "$out/pytorch.jsonl"
echo "$(uptime)"
read -r latent_kb latent_s < "$out/latent.time"
read -r torch_kb torch_s < "$out/pytorch.time"
echo "| run | peak RSS MiB | wall s |"
echo "|---|---|---|"
echo "| latent train $model --epochs 1 ${limit_args[*]} | $((latent_kb / 1024)) | $latent_s |"
echo "| train_reference.py $model --epochs 1 ${limit_args[*]} | $((torch_kb / 1024)) | $torch_s |"
