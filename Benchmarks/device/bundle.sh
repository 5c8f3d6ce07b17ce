#!/usr/bin/env bash
# Packs what a device machine without Swift needs to run the OpenCL tests and `latent` on
# its GPU: the debug test bundle, the release binary, their Swift runtime libraries, the
# OpenCL ICD loader and MNIST, as .build-gpu/bundle.tar.xz (about 44 MB; the device tool
# carries up to 64 MiB). Then, on the device: `bash Benchmarks/device/run.sh` with
# carry [".build-gpu"]. See docs/OPENCL.md, "On a real GPU".
#   Benchmarks/device/bundle.sh      (needs MNIST where LATENT_DATA points, default ../shared/datasets)
set -euo pipefail
cd "$(dirname "$0")/../.."
data="${LATENT_DATA:-../shared/datasets}"
swift build --build-tests >/dev/null
swift build -c release --product latent >/dev/null
rm -rf .build-gpu && mkdir -p .build-gpu/b/lib .build-gpu/b/data/mnist
cp .build/debug/LatentPackageTests.xctest .build/release/latent .build-gpu/b/
# Everything they link but the C and C++ runtimes every Linux image has.
ldd .build/debug/LatentPackageTests.xctest .build/release/latent | awk '/=> \//{print $3}' | sort -u \
    | grep -v -E "/libc\.so|/libm\.so|ld-linux|libstdc\+\+|libgcc_s|libpthread|libdl\.so|librt\.so" \
    | xargs -I{} cp -L {} .build-gpu/b/lib/
cp -L "$(ldconfig -p | awk '/libOpenCL.so.1 /{print $NF; exit}')" .build-gpu/b/lib/libOpenCL.so.1
cp "$data"/mnist/*.gz .build-gpu/b/data/mnist/
tar cJf .build-gpu/bundle.tar.xz -C .build-gpu/b .
rm -rf .build-gpu/b
ls -la .build-gpu/bundle.tar.xz
