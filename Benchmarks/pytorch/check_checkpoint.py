#!/usr/bin/env python3
"""Loads a Latent checkpoint into its PyTorch twin (models.py) and compares outputs.

A Latent checkpoint (safetensors) holds the model's weights and buffers under their PyTorch
state_dict names, the optimizers' state under keys starting with "optimizer" ("optimizer.",
"optimizer_g.", "optimizer_d."), and metadata: "model" and "latent_config" (the JSON of
TrainingOptions). This script

  1. builds `models.build(model, latent_config)`,
  2. loads every non-optimizer tensor with `load_state_dict(strict=True)`: a missing or
     unexpected name, or a shape that differs, fails the check,
  3. runs the model in eval mode on inputs and compares with Latent's outputs.

Latent's outputs come in a "dump" file (safetensors, e.g. from `latent reconstruct --dump`):

  input   the function's input: images (N, 1, 28, 28) in [0, 1] for reconstruct and
          classify; codes (N, Z) for decode; noise z (N, Z) for generate
  output  Latent's result: images (N, 1, 28, 28) in [0, 1] (GANs: G(z) mapped from
          [-1, 1] to [0, 1]); softmax probabilities (N, 10) for classify
  labels  optional (N), class indices as floats (cvae)
  metadata "function": reconstruct | decode | generate | classify; without it, the model's
          usual one (models.DEFAULT_FUNCTION: reconstruct for the autoencoders, decode for
          designed-latent, generate for the GANs, classify for the classifier)

Without a dump, `--inputs FILE` (.idx/.idx.gz images, or .npy) or `--data DIR` (the first
`--count` test images of the checkpoint's dataset; GANs draw seeded noise instead) gives
inputs, and `--save FILE.npy` keeps PyTorch's outputs.

    python3 Benchmarks/pytorch/check_checkpoint.py runs/vae-conv/checkpoint.safetensors \\
        --dump runs/vae-conv/recon.safetensors
    python3 Benchmarks/pytorch/check_checkpoint.py runs/ae/checkpoint.safetensors --data ~/data --count 16

Several checkpoints may be checked at once (`--dump` then takes one file per checkpoint).
Exit status 0 when every check passes, 1 otherwise. Needs torch and numpy; the
`safetensors` package is used when installed, else a small reader here.
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import models  # noqa: E402

DTYPES = {"F32": "<f4", "F64": "<f8", "F16": "<f2", "I64": "<i8", "I32": "<i4", "U8": "u1"}


def read_safetensors(path):
    """(tensors by name, metadata) of a safetensors file."""
    with open(path, "rb") as handle:
        data = handle.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise ValueError(f"{path}: header length {length} exceeds the file")
    header = json.loads(data[8:8 + length])
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + length
    tensors = {}
    for name, entry in header.items():
        dtype = DTYPES.get(entry["dtype"])
        if dtype is None:
            raise ValueError(f"{path}: tensor {name!r} has unsupported dtype {entry['dtype']}")
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=dtype).reshape(entry["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata


def read_idx(path):
    """An IDX file (raw or .gz) as a numpy array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    rank = data[3]
    dims = struct.unpack(">" + "I" * rank, data[4:4 + 4 * rank])
    count = int(np.prod(dims))
    return np.frombuffer(data[4 + 4 * rank:4 + 4 * rank + count], dtype=np.uint8).reshape(dims)


def images_from(path):
    """(N, 1, 28, 28) floats in [0, 1] from an IDX or .npy file."""
    if path.endswith(".npy"):
        array = np.load(path)
        array = array.astype(np.float32) / 255 if array.dtype == np.uint8 else array.astype(np.float32)
    else:
        array = read_idx(path).astype(np.float32) / 255
    return torch.from_numpy(array.reshape(-1, 1, 28, 28))


def find_split(folder, dataset, stem):
    for candidate in [os.path.join(folder, dataset, stem), os.path.join(folder, stem)]:
        for suffix in ["", ".gz"]:
            if os.path.exists(candidate + suffix):
                return candidate + suffix
    raise FileNotFoundError(f"no {stem}[.gz] under {folder}/{dataset} or {folder}")


def load(path, ignore_prefixes):
    """The PyTorch model of a Latent checkpoint, its model name and options."""
    tensors, metadata = read_safetensors(path)
    if "latent_config" not in metadata:
        raise ValueError(f"{path}: no 'latent_config' in the metadata; is this a Latent checkpoint?")
    config = json.loads(metadata["latent_config"])
    name = metadata.get("model") or config.get("model")
    model = models.build(name, config)
    weights = {key: value for key, value in tensors.items()
               if not any(key.startswith(prefix) for prefix in ignore_prefixes)}
    expected = model.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    if missing or unexpected:
        raise ValueError(f"{path}: state_dict names differ from models.py's {name}: "
                         f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
                         f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}")
    for key, value in weights.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(f"{path}: {key} has shape {tuple(value.shape)}, models.py's {name} needs "
                             f"{tuple(expected[key].shape)}")
    model.load_state_dict(weights, strict=True)
    model.eval()
    return model, name, config, len(tensors) - len(weights)


def compare(label, actual, expected, tolerance):
    if tuple(actual.shape) != tuple(expected.shape):
        actual = actual.reshape(expected.shape) if actual.numel() == expected.numel() else actual
    if tuple(actual.shape) != tuple(expected.shape):
        print(f"FAIL {label}: PyTorch output {tuple(actual.shape)} vs Latent {tuple(expected.shape)}")
        return False
    difference = (actual.double() - expected.double()).abs()
    worst = difference.max().item() if difference.numel() else 0.0
    ok = bool(torch.isfinite(actual).all()) and worst <= tolerance
    print(f"{'ok  ' if ok else 'FAIL'} {label}: max |PyTorch - Latent| = {worst:.3g} "
          f"(tolerance {tolerance:g}, {expected.numel()} values)")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", help="Latent checkpoint.safetensors files")
    parser.add_argument("--dump", "--recon", nargs="+", default=[], dest="dumps",
                        help="Latent output dumps (input, output[, labels]), one per checkpoint")
    parser.add_argument("--inputs", help="images as IDX (.idx, .gz) or .npy, when there is no dump")
    parser.add_argument("--data", help="a data folder: the first --count test images of the checkpoint's dataset")
    parser.add_argument("--count", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0, help="noise seed for GANs without a dump")
    parser.add_argument("--function", help="override: reconstruct, decode, generate, classify")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="largest absolute difference allowed")
    parser.add_argument("--ignore-prefix", nargs="*", default=["optimizer"],
                        help="checkpoint keys that are not model weights (default: optimizer)")
    parser.add_argument("--save", help="write PyTorch's outputs (.npy) when there is no dump")
    args = parser.parse_args()
    if args.dumps and len(args.dumps) != len(args.checkpoints):
        parser.error(f"{len(args.checkpoints)} checkpoints but {len(args.dumps)} dumps")
    torch.set_grad_enabled(False)

    passed = True
    for index, path in enumerate(args.checkpoints):
        try:
            model, name, config, skipped = load(path, args.ignore_prefix)
        except (ValueError, RuntimeError, KeyError) as error:
            print(f"FAIL {path}: {error}")
            passed = False
            continue
        print(f"ok   {path}: {name}, {len(model.state_dict())} state_dict tensors loaded strictly, "
              f"{skipped} optimizer tensors skipped")
        if args.dumps:
            dump, metadata = read_safetensors(args.dumps[index])
            function = args.function or metadata.get("function") or models.DEFAULT_FUNCTION[name]
            if "input" not in dump or "output" not in dump:
                print(f"FAIL {args.dumps[index]}: needs tensors 'input' and 'output'")
                passed = False
                continue
            labels = dump["labels"].long() if "labels" in dump else None
            outputs = models.apply(model, function, dump["input"].float(), labels)
            passed &= compare(f"{name} {function} ({args.dumps[index]})", outputs, dump["output"].float(), args.tolerance)
            continue
        function = args.function or models.DEFAULT_FUNCTION[name]
        labels = None
        if function in ("generate", "decode"):
            generator = torch.Generator().manual_seed(args.seed)
            inputs = torch.randn(args.count, config["latentDim"], generator=generator)
        elif args.inputs:
            inputs = images_from(args.inputs)[:args.count]
        elif args.data:
            dataset = config.get("dataset", "mnist")
            inputs = images_from(find_split(args.data, dataset, "t10k-images-idx3-ubyte"))[:args.count]
            labels = torch.from_numpy(read_idx(find_split(args.data, dataset, "t10k-labels-idx1-ubyte"))[:args.count].astype(np.int64))
        else:
            print(f"note {path}: no --dump, --inputs or --data: only the weights were checked")
            continue
        outputs = models.apply(model, function, inputs, labels)
        print(f"ok   {name} {function}: outputs {tuple(outputs.shape)}, range [{outputs.min().item():.4f}, "
              f"{outputs.max().item():.4f}]")
        if function == "classify" and labels is not None:
            accuracy = (outputs.argmax(1) == labels).float().mean().item()
            print(f"     accuracy on these {len(labels)} test images: {accuracy:.4f}")
        if args.save:
            np.save(args.save, outputs.numpy())
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
