#!/usr/bin/env python3
"""Train a VAE-family model of Latent's zoo in PyTorch, the way `latent train` does, and
print one JSON line per epoch in metrics.jsonl's fields, for the side-by-side columns of
docs/RESULTS.md.

Same architecture and names (models.py), same hyperparameters (Latent's catalogue unless
--config overrides), same objective (sum over pixels and latent units, averaged over the
batch), same optimizer (torch.optim.Adam with Latent's lr and betas), same evaluation
(test set in file order, eval mode, z sampled once per image). PyTorch's own initialisation
and shuffling stand in for Latent's Philox streams, so the two runs agree statistically,
not bit for bit.

    python3 Benchmarks/pytorch/train_reference.py vae-conv --epochs 3 --data ../shared/datasets
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402


def read_idx(folder, stem):
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as handle:
                data = handle.read()
            dims = data[3]
            shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)
    raise FileNotFoundError(f"{stem} not found in {folder}")


def load(folder, split, limit):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if limit:
        images, labels = images[:limit], labels[:limit]
    return torch.from_numpy(images.astype(np.float32) / 255).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model", choices=["vae-fc", "cvae", "vae-conv", "beta-vae"])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--data", required=True, help="folder holding mnist/ (or the four IDX files)")
    parser.add_argument("--config", default="{}", help="JSON of TrainingOptions overrides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    config = json.loads(args.config)
    model = models.build(args.model, config)
    o = models.options(args.model, config)
    # Latent's catalogue (Sources/LatentModels/ModelCatalog.swift): batch 64 for the report-004
    # models, 128 for report 003's; Adam 1e-3; beta-vae's beta 2.
    batch_size = config.get("batchSize", 64 if args.model in ("vae-conv", "beta-vae") else 128)
    lr = config.get("learningRate", 1e-3)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(o.get("beta1", 0.9), 0.999))
    folder = os.path.join(args.data, "mnist") if os.path.isdir(os.path.join(args.data, "mnist")) else args.data
    train_x, train_y = load(folder, "train", args.limit)
    test_x, test_y = load(folder, "test", max(1, args.limit // 6) if args.limit else 0)
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        model.train()
        totals = {}
        order = torch.randperm(len(train_x))
        for first in range(0, len(train_x), batch_size):
            index = order[first:first + batch_size]
            x, y = train_x[index], train_y[index]
            terms = model.losses(x, y)
            optimizer.zero_grad()
            (terms["loss"] / len(x)).backward()
            optimizer.step()
            for name, value in terms.items():
                totals[name] = totals.get(name, 0.0) + value.item()
        seconds = time.perf_counter() - start
        model.eval()
        test_totals = {}
        with torch.no_grad():
            for first in range(0, len(test_x), batch_size):
                terms = model.losses(test_x[first:first + batch_size], test_y[first:first + batch_size])
                for name, value in terms.items():
                    test_totals[name] = test_totals.get(name, 0.0) + value.item()
        line = {"epoch": epoch, "train_loss": totals["loss"] / len(train_x), "test_loss": test_totals["loss"] / len(test_x)}
        line.update({name: value / len(train_x) for name, value in totals.items() if name != "loss"})
        line.update({f"test_{name}": value / len(test_x) for name, value in test_totals.items() if name != "loss"})
        line.update({"images_per_sec": len(train_x) / seconds, "backend": "pytorch", "seconds": seconds})
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
