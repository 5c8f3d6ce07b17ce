#!/usr/bin/env python3
"""Training images/s of a Latent zoo model's PyTorch twin (models.py), timed the way
`latent bench train MODEL` times Latent, so that Benchmarks/compare-train.sh can put the
two side by side:

- the same model, batch size (Latent's catalogue: 64, 128 for the fully connected VAEs),
  optimizer (torch.optim.Adam with the catalogue's lr and betas) and data (shuffled MNIST
  in the model's pixel range; --synthetic: uniform noise);
- a step is what a training loop does per batch: the batch taken from the uint8 images and
  converted to floats, forward, backward, optimizer step. VAEs: zero_grad, losses(),
  (loss / N).backward(), step. GANs follow GAN.swift: one G step (BCE(D(G(z)), 1), mean,
  backward into G's parameters only, as Latent skips D's weight gradients there), then one
  D step on the real batch and the same fakes, (BCE(D(x), 1) + BCE(D(fake), 0)) / 2, whose
  fake term reuses the G step's pass through D as Latent does (D's batch norm replayed on
  the fakes after the real batch); --three-passes runs D on the fakes again instead (report
  004's code, D's parameters frozen during the G step);
- --warmup untimed steps, then --repeats timed runs of --steps steps; images/s is the
  median over repeats;
- threads: torch.set_num_threads(--threads) (and one inter-op thread);
- subnormals flushed (torch.set_flush_denormal(True)) as Latent's CPU backend does, which
  is PyTorch's faster setting (--keep-denormals to turn it off);
- peak_rss_mb: VmHWM of this process from /proc/self/status.

    python3 Benchmarks/pytorch/train_step_bench.py vae-conv --data ../shared/datasets --json
    python3 Benchmarks/pytorch/train_step_bench.py dcgan --threads 2 --steps 100 --repeats 3

Prints one JSON object with --json (backend "pytorch", device, images_per_sec, ...).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402
from train_reference import read_idx  # noqa: E402

# Latent's ModelCatalog (Sources/LatentModels/ModelCatalog.swift): batch size, lr, beta1.
CATALOG = {
    "vae-fc": dict(batch=128, lr=1e-3, beta1=0.9),
    "cvae": dict(batch=128, lr=1e-3, beta1=0.9),
    "vae-conv": dict(batch=64, lr=1e-3, beta1=0.9),
    "beta-vae": dict(batch=64, lr=1e-3, beta1=0.9),
    "ae": dict(batch=128, lr=1e-3, beta1=0.9),
    "gan-mlp": dict(batch=64, lr=1e-3, beta1=0.5),
    "dcgan": dict(batch=64, lr=2e-4, beta1=0.5),
}
GANS = ("gan-mlp", "dcgan")


def peak_rss_mb():
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def load_average():
    try:
        with open("/proc/loadavg") as handle:
            return float(handle.read().split()[0])
    except OSError:
        return None


def make_step(name, model, batch, lr, beta1, three_passes=False):
    """The training step of `name` as a function of (images, labels)."""
    if name in GANS:
        g, d = model.generator, model.discriminator
        opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(beta1, 0.999))
        opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(beta1, 0.999))
        g_parameters, d_parameters = list(g.parameters()), list(d.parameters())
        norms = [m for m in d.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        norm_inputs = []
        for norm in norms:
            norm.register_forward_pre_hook(lambda _module, inputs: norm_inputs.append(inputs[0]))
        real = torch.ones(batch, 1)
        fake = torch.zeros(batch, 1)
        latent = model.o["latentDim"]

        def report_step(x, _labels):
            # Report 004's step: D judges the fakes twice (G step, D step), D's weight
            # gradients skipped in the G step.
            opt_g.zero_grad()
            z = torch.randn(batch, latent)
            generated = g(z)
            for p in d_parameters:
                p.requires_grad_(False)
            g_loss = F.binary_cross_entropy(d(generated), real)
            g_loss.backward()
            for p in d_parameters:
                p.requires_grad_(True)
            opt_g.step()
            opt_d.zero_grad()
            d_loss = (F.binary_cross_entropy(d(x), real) + F.binary_cross_entropy(d(generated.detach()), fake)) / 2
            d_loss.backward()
            opt_d.step()
            return g_loss + d_loss

        def step(x, _labels):
            # Latent's step (GAN.swift): the D step takes its fake term from the G step's pass
            # through D (same D weights, same fakes), then the real batch; D's batch norm
            # then moves its running statistics on the fakes once more, as the skipped pass
            # would have.
            opt_g.zero_grad()
            z = torch.randn(batch, latent)
            generated = g(z)
            norm_inputs.clear()
            judged = d(generated)
            fake_inputs = list(norm_inputs)
            g_loss = F.binary_cross_entropy(judged, real)
            g_loss.backward(inputs=g_parameters, retain_graph=True)
            opt_g.step()
            opt_d.zero_grad()
            fake_term = F.binary_cross_entropy(judged, fake)
            (fake_term / 2).backward(inputs=d_parameters)
            real_term = F.binary_cross_entropy(d(x), real)
            (real_term / 2).backward()
            with torch.no_grad():
                for norm, stash in zip(norms, fake_inputs):
                    norm(stash)
            opt_d.step()
            return g_loss + (real_term + fake_term) / 2

        return report_step if three_passes else step

    optimizer = torch.optim.Adam(model.parameters(), lr=lr, betas=(beta1, 0.999))

    def step(x, labels):
        optimizer.zero_grad()
        loss = model.losses(x, labels)["loss"]
        (loss / x.shape[0]).backward()
        optimizer.step()
        return loss

    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=sorted(CATALOG))
    parser.add_argument("--data", default=os.environ.get("LATENT_DATA", ""), help="folder holding mnist/ (or the IDX files)")
    parser.add_argument("--synthetic", action="store_true", help="uniform noise instead of MNIST")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep-denormals", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--three-passes", action="store_true",
                        help="GANs: D judges the fakes again in the D step (report 004's code) instead of Latent's reuse")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    if not args.keep_denormals:
        torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    load = load_average()
    entry = CATALOG[args.model]
    batch = args.batch_size or entry["batch"]
    model = models.build(args.model)
    model.train()
    step = make_step(args.model, model, batch, entry["lr"], entry["beta1"], three_passes=args.three_passes)
    gan = args.model in GANS

    rng = np.random.default_rng(args.seed)
    if args.synthetic:
        images = rng.integers(0, 256, size=(4 * batch, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=4 * batch, dtype=np.int64)
        data_name = "synthetic"
    else:
        folder = os.path.join(args.data, "mnist") if os.path.isdir(os.path.join(args.data, "mnist")) else args.data
        images = read_idx(folder, "train-images-idx3-ubyte")
        labels = read_idx(folder, "train-labels-idx1-ubyte").astype(np.int64)
        data_name = "mnist"
    order = rng.permutation(len(images))
    batches = len(images) // batch
    if batches == 0:
        sys.exit(f"--batch-size {batch} is larger than the {len(images)} images")

    counter = [0]

    def one_step():
        index = order[(counter[0] % batches) * batch:(counter[0] % batches + 1) * batch]
        x = torch.from_numpy(images[index]).unsqueeze(1).float().div_(255)
        if gan:
            x = x.mul_(2).sub_(1)
        y = torch.from_numpy(labels[index])
        step(x, y)
        counter[0] += 1

    for _ in range(args.warmup):
        one_step()
    rates = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(args.steps):
            one_step()
        seconds = time.perf_counter() - start
        rates.append(args.steps * batch / seconds)
    median = statistics.median(rates)
    report = {
        "model": args.model, "backend": "pytorch", "device": f"cpu, {args.threads} thread(s), torch {torch.__version__}",
        "threads": args.threads, "batch_size": batch, "steps": args.steps, "warmup": args.warmup,
        "repeats": args.repeats, "data": data_name, "images_per_sec": median, "images_per_sec_repeats": rates,
        "step_ms": batch / median * 1e3, "peak_rss_mb": peak_rss_mb(), "load_average": load,
    }
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"{args.model} on pytorch ({args.threads} threads): {median:.0f} images/s (median of {args.repeats}), "
              f"{report['step_ms']:.2f} ms/step, batch {batch}, peak RSS {report['peak_rss_mb']:.0f} MiB, load {load}")


if __name__ == "__main__":
    main()
