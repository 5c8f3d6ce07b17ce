#!/usr/bin/env bash
# How far apart report 004's conv VAE ends after a few Adam steps on real MNIST (batch 64,
# seed 0, the catalogue's defaults) on the OpenCL backend and on the CPU backend with each of
# its convolution algorithms, all against the CPU backend's default run: per tensor,
# ||a - b|| / ||b|| over the checkpoints' parameters and running variances (the conv biases a
# batch norm removes, whose gradient is rounding noise, the running means and the optimizer
# state left out), worst six tensors per run; then the same steps in reproducible mode
# (`--reproducible`) on both backends, whose checkpoints must be identical to the byte.
# See docs/OPENCL.md, "Parity after several Adam steps".
#   Benchmarks/backend-drift.sh [STEPS]     (default 5; needs numpy and MNIST where `latent data info` finds it)
set -euo pipefail
cd "$(dirname "$0")/.."
steps="${1:-5}"
swift build -c release --product latent >/dev/null
latent=.build/release/latent
out=$(mktemp -d)
run() { # NAME BACKEND [LATENT_CPU_CONV] [more options]
    LATENT_CPU_CONV="${3:-}" "$latent" train vae-conv --epochs 1 --limit $((64 * steps)) --batch-size 64 --seed 0 \
        --backend "$2" --threads 2 --out "$out/$1" --quiet "${@:4}"
}
run cpu cpu
run cpu-batch-inner cpu batch-inner
run cpu-im2col cpu im2col
run opencl opencl
run cpu-reproducible cpu "" --reproducible
run opencl-reproducible opencl "" --reproducible
python3 - "$out" <<'PY'
import json, struct, sys
import numpy as np
out = sys.argv[1]
def load(name):
    raw = open(f"{out}/{name}/checkpoint.safetensors", "rb").read()
    size = struct.unpack("<Q", raw[:8])[0]
    header, base = json.loads(raw[8:8 + size]), 8 + size
    return {k: np.frombuffer(raw[base + v["data_offsets"][0]:base + v["data_offsets"][1]], dtype=np.float32).astype(np.float64)
            for k, v in header.items() if k != "__metadata__"}
skip = {"encoder.0.bias", "encoder.3.bias", "encoder.6.bias"}
reference = load("cpu")
for name in ["cpu-batch-inner", "cpu-im2col", "opencl", "cpu-reproducible"]:
    other = load(name)
    gaps = sorted(((np.linalg.norm(other[k] - v) / max(np.linalg.norm(v), 1e-30), k) for k, v in reference.items()
                   if not k.startswith("optimizer") and k not in skip
                   and not k.endswith(("running_mean", "num_batches_tracked"))), reverse=True)
    print(f"{name:16} against cpu: " + ", ".join(f"{k} {g:.1e}" for g, k in gaps[:6]))
PY
if cmp -s "$out/cpu-reproducible/checkpoint.safetensors" "$out/opencl-reproducible/checkpoint.safetensors"; then
    echo "reproducible mode: the CPU and OpenCL checkpoints are identical to the byte"
else
    echo "reproducible mode: the CPU and OpenCL checkpoints DIFFER" >&2
    exit 1
fi
