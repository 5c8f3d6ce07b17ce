#!/usr/bin/env bash
# On a device machine (no Swift; a GPU with an OpenCL driver): unpacks .build-gpu/bundle.tar.xz
# (Benchmarks/device/bundle.sh), registers NVIDIA's OpenCL library as an ICD (the CUDA image
# lists only PoCL's), then runs every OpenCL test, a reproducible-mode checkpoint comparison
# of the GPU against the CPU backend (vae-conv, then every other model of the zoo), and
# vae-conv's training speed. Results go to $OUT. SKIP_TESTS=1 leaves the tests out.
cd "$(dirname "$0")/../.."
root=$PWD
mkdir -p .build-gpu/b && tar xJf .build-gpu/bundle.tar.xz -C .build-gpu/b && cd .build-gpu/b
export LD_LIBRARY_PATH=$PWD/lib LATENT_DATA=$PWD/data OUT="${OUT:-/tmp}"
nv=$(ls /usr/lib/x86_64-linux-gnu/libnvidia-opencl.so* /usr/local/nvidia/lib64/libnvidia-opencl.so* 2>/dev/null | head -1)
mkdir -p icd && cp /etc/OpenCL/vendors/*.icd icd/ 2>/dev/null
[ -n "$nv" ] && echo "$nv" > icd/nvidia.icd
export OCL_ICD_VENDORS=$PWD/icd
./latent devices; ./latent info
export LATENT_REQUIRE_OPENCL=1
classes=$(ls "$root"/Tests/LatentOpenCLTests/*Tests.swift | xargs -n1 basename | sed 's/.swift$//; s/^/LatentOpenCLTests./' | paste -sd, -)
if [ -z "${SKIP_TESTS:-}" ]; then
    timeout 300 ./LatentPackageTests.xctest "$classes" > "$OUT/opencl-tests.log" 2>&1; echo "opencl tests rc $?"
    grep -E "error|failed|Executed" "$OUT/opencl-tests.log" | tail -20
fi
for b in opencl cpu; do
    rm -rf /tmp/r-$b
    ./latent train vae-conv --epochs 1 --limit 320 --batch-size 64 --seed 0 --backend $b --reproducible --out /tmp/r-$b --quiet
    cat /tmp/r-$b/metrics.jsonl
done
cmp /tmp/r-cpu/checkpoint.safetensors /tmp/r-opencl/checkpoint.safetensors && echo "reproducible checkpoints identical"
# Every model of the zoo, two reproducible steps on the GPU and on the CPU backend.
for model in ae vae-fc beta-vae cvae vqvae gan-mlp dcgan designed-latent pca-decoder classifier; do
    for b in opencl cpu; do
        rm -rf /tmp/z-$model-$b
        ./latent train $model --epochs 1 --limit 128 --batch-size 64 --seed 3 --backend $b --reproducible --out /tmp/z-$model-$b --quiet
    done
    cmp -s /tmp/z-$model-cpu/checkpoint.safetensors /tmp/z-$model-opencl/checkpoint.safetensors \
        && echo "$model: identical" || echo "$model: DIFFER"
done
for b in opencl cpu; do ./latent bench train vae-conv --backend $b --steps 50 --repeats 3 | tail -1; done
