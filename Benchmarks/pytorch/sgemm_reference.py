#!/usr/bin/env python3
"""SGEMM GFLOP/s of numpy and (if installed) torch on this machine, for the comparison in
docs/PERFORMANCE.md. Run it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (the image
sets them for old OpenBLAS builds; they slow a current numpy):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 Benchmarks/pytorch/sgemm_reference.py --threads 2

Prints one JSON object: {"numpy": {"256": gflops, ...}, "torch": {...}, "blas": "..."}.
Timing: one warm-up, then the median of repeats covering at least 0.25 s, as `latent bench ops`.
"""
import argparse
import json
import os
import statistics
import time


def median_seconds(fn, minimum_seconds=0.25, minimum_repeats=5):
    fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < minimum_repeats or time.perf_counter() - start < minimum_seconds:
        before = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - before)
    return statistics.median(samples)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sizes", default="256,512,1024,2048")
    args = parser.parse_args()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import numpy as np

    sizes = [int(s) for s in args.sizes.split(",")]
    result = {"threads": args.threads, "numpy": {}, "torch": {}}
    try:
        config = np.show_config(mode="dicts")
        result["blas"] = config.get("Build Dependencies", {}).get("blas", {}).get("name", "unknown")
    except Exception:  # older numpy
        result["blas"] = "unknown"
    rng = np.random.default_rng(0)
    for n in sizes:
        a = rng.random((n, n), dtype=np.float32)
        b = rng.random((n, n), dtype=np.float32)
        seconds = median_seconds(lambda: a @ b)
        result["numpy"][str(n)] = 2 * n**3 / seconds / 1e9
    try:
        import torch

        torch.set_num_threads(args.threads)
        for n in sizes:
            a = torch.rand(n, n)
            b = torch.rand(n, n)
            seconds = median_seconds(lambda: a @ b)
            result["torch"][str(n)] = 2 * n**3 / seconds / 1e9
    except ImportError:
        pass
    print(json.dumps(result))


if __name__ == "__main__":
    main()
