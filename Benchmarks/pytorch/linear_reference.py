#!/usr/bin/env python3
"""GFLOP/s of PyTorch's GEMMs for the report models' Linear layers (forward, backward-data,
backward-weights), beside the `linear` group of `latent bench ops` (docs/PERFORMANCE.md):

    python3 Benchmarks/pytorch/linear_reference.py --threads 2

Each product: 20 warm-up calls, then the mean of 200.
"""
import argparse
import time

import torch

SHAPES = [(128, 784, 400), (128, 400, 400), (128, 400, 784),  # vae-fc (batch, in, out)
          (64, 512, 1024), (64, 1024, 784), (64, 100, 6272)]  # gan-mlp, dcgan


def milliseconds(fn, repeats=200):
    for _ in range(20):
        fn()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats * 1e3


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    torch.set_num_threads(parser.parse_args().threads)
    for batch, inputs, outputs in SHAPES:
        x, w, g = torch.randn(batch, inputs), torch.randn(outputs, inputs), torch.randn(batch, outputs)
        mflop = 2 * batch * inputs * outputs / 1e6
        rows = [("forward", lambda: torch.nn.functional.linear(x, w)), ("backward-data", lambda: g @ w),
                ("backward-weights", lambda: g.t() @ x)]
        for name, fn in rows:
            ms = milliseconds(fn)
            print(f"Linear({inputs},{outputs}) {name:16} batch {batch}: {ms:.3f} ms {mflop / ms:.0f} GFLOP/s")


if __name__ == "__main__":
    main()
