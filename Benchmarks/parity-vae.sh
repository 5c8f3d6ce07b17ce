#!/usr/bin/env bash
# Test loss per image of every VAE-family model after each of EPOCHS epochs: Latent (CPU
# backend, seed 0, the catalogue's defaults) beside the PyTorch reference
# (Benchmarks/pytorch/train_reference.py, same architecture and hyperparameters), as a
# Markdown table for docs/RESULTS.md.
#   Benchmarks/parity-vae.sh [EPOCHS] [MODELS...]     (default 3; vae-fc cvae vae-conv beta-vae)
# Needs MNIST where `latent data info` finds it, and torch (pip install "torch==2.13.0+cpu").
set -euo pipefail
cd "$(dirname "$0")/.."
epochs="${1:-3}"; shift || true
models=("$@"); [ ${#models[@]} -gt 0 ] || models=(vae-fc cvae vae-conv beta-vae)
swift build -c release --product latent >/dev/null
data=$(.build/release/latent data info --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["directory"])')
out=$(mktemp -d)
for model in "${models[@]}"; do
    .build/release/latent train "$model" --epochs "$epochs" --seed 0 --backend cpu --threads 2 --out "$out/$model" --quiet
    python3 Benchmarks/pytorch/train_reference.py "$model" --epochs "$epochs" --data "$data" --seed 0 --threads 2 > "$out/$model.torch.jsonl"
done
python3 - "$out" "$epochs" "${models[@]}" <<'PY'
import json, sys
out, epochs, models = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
print("| model | epoch | Latent test loss | PyTorch test loss | difference | Latent img/s | PyTorch img/s |")
print("|---|---|---|---|---|---|---|")
for model in models:
    ours = [json.loads(l) for l in open(f"{out}/{model}/metrics.jsonl")]
    theirs = [json.loads(l) for l in open(f"{out}/{model}.torch.jsonl")]
    for a, b in zip(ours, theirs):
        diff = (a["test_loss"] - b["test_loss"]) / b["test_loss"]
        print(f"| {model} | {a['epoch']} | {a['test_loss']:.2f} | {b['test_loss']:.2f} | {diff:+.1%} | {a['images_per_sec']:.0f} | {b['images_per_sec']:.0f} |")
PY
