#!/usr/bin/env bash
# Every model of the zoo trained a few steps in reproducible mode (`--reproducible`) on the
# CPU and OpenCL backends: the two checkpoints must be identical to the byte.
#   Benchmarks/reproducible-zoo.sh [STEPS]     (default 2 steps of 64; MNIST where `latent data info` finds it)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-2}"
swift build -c release --product latent >/dev/null
latent=$PWD/.build/release/latent
out=$(mktemp -d)
status=0
for model in ae vae-fc vae-conv beta-vae cvae vqvae gan-mlp dcgan designed-latent pca-decoder classifier; do
    for backend in cpu opencl; do
        "$latent" train "$model" --epochs 1 --limit $((64 * steps)) --batch-size 64 --seed 3 --backend "$backend" \
            --reproducible --out "$out/$model-$backend" --quiet
    done
    if cmp -s "$out/$model-cpu/checkpoint.safetensors" "$out/$model-opencl/checkpoint.safetensors"; then
        echo "$model: identical"
    else
        echo "$model: the CPU and OpenCL checkpoints DIFFER" >&2
        status=1
    fi
done
rm -rf "$out"
exit $status
