#!/usr/bin/env python3
"""Reads a Latent run's TensorBoard events with TensorBoard's own reader and checks them
against the run's metrics.jsonl and sample grids.

    python3 scripts/check_tensorboard.py RUN_DIR

Checks, for every epoch of RUN_DIR/metrics.jsonl: the scalars train/<term> and test/<term>
(every loss term, equal to the metrics line within float precision), perf/images_per_sec,
perf/epoch_seconds and lr/<optimizer>; the image `samples` (a PNG equal to
samples-eNNN.png, with its width and height) for every grid in the folder; and the running
loss step/loss. Prints one line per check group and "tensorboard check: OK"; exits 1 on the
first mismatch, 77 when the tensorboard package is not importable.
"""
import glob
import json
import math
import os
import struct
import sys

try:
    from tensorboard.backend.event_processing import event_accumulator
except ImportError:
    print("tensorboard is not importable (pip install tensorboard)", file=sys.stderr)
    sys.exit(77)


def fail(message):
    print("tensorboard check FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6)


def png_size(data):
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def main():
    if len(sys.argv) != 2:
        fail("usage: check_tensorboard.py RUN_DIR")
    run = sys.argv[1]
    tb = os.path.join(run, "tb")
    files = sorted(glob.glob(os.path.join(tb, "events.out.tfevents.*")))
    if not files:
        fail(f"no event files in {tb}")

    lines = []
    with open(os.path.join(run, "metrics.jsonl")) as handle:
        lines = [json.loads(line) for line in handle if line.strip()]
    if not lines:
        fail("metrics.jsonl has no epochs")

    accumulator = event_accumulator.EventAccumulator(
        tb, size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = set(tags.get("scalars", []))
    images = set(tags.get("images", []))
    print(f"{len(files)} event file(s); scalars: {', '.join(sorted(scalars))}; images: {', '.join(sorted(images))}")

    def by_step(tag):
        if tag not in scalars:
            fail(f"scalar '{tag}' missing (have {sorted(scalars)})")
        # A resumed run repeats no epoch, but keep the latest value of a step if one did.
        return {event.step: event.value for event in accumulator.Scalars(tag)}

    bookkeeping = {"epoch", "train_loss", "test_loss", "images_per_sec", "backend", "seconds", "rss_mb"}
    checked = 0
    for line in lines:
        epoch = line["epoch"]
        expected = {"train/loss": line["train_loss"], "test/loss": line["test_loss"],
                    "perf/images_per_sec": line["images_per_sec"], "perf/epoch_seconds": line["seconds"]}
        for key, value in line.items():
            if key in bookkeeping:
                continue
            if key.startswith("test_"):
                expected["test/" + key[len("test_"):]] = value
            else:
                expected["train/" + key] = value
        for tag, value in expected.items():
            if value is None:
                continue
            series = by_step(tag)
            if epoch not in series:
                fail(f"'{tag}' has no value at step {epoch} (steps {sorted(series)})")
            if not close(series[epoch], value):
                fail(f"'{tag}' at epoch {epoch} is {series[epoch]}, metrics.jsonl says {value}")
            checked += 1
    print(f"scalars: {checked} epoch values equal metrics.jsonl over {len(lines)} epochs")

    rates = [tag for tag in scalars if tag.startswith("lr/")]
    if not rates:
        fail("no learning-rate scalar lr/<optimizer>")
    for tag in rates:
        values = by_step(tag)
        if sorted(values) != sorted(line["epoch"] for line in lines) or not all(v > 0 for v in values.values()):
            fail(f"'{tag}' should be positive at every epoch, got {values}")
    last = lines[-1]["epoch"]
    print("learning rates: " + ", ".join("%s=%.3g" % (tag, by_step(tag)[last]) for tag in sorted(rates)))

    running = by_step("step/loss")
    if not running or not all(math.isfinite(v) for v in running.values()):
        fail("step/loss is empty or not finite")
    print(f"running loss: {len(running)} points, steps {min(running)}..{max(running)}")

    grids = sorted(glob.glob(os.path.join(run, "samples-e*.png")))
    if grids:
        if "samples" not in images:
            fail(f"image 'samples' missing (images: {sorted(images)})")
        events = {event.step: event for event in accumulator.Images("samples")}
        for path in grids:
            epoch = int(os.path.basename(path)[len("samples-e"):-len(".png")])
            if epoch not in events:
                fail(f"no 'samples' image at step {epoch}")
            event = events[epoch]
            with open(path, "rb") as handle:
                png = handle.read()
            if event.encoded_image_string != png:
                fail(f"the 'samples' image of epoch {epoch} differs from {path}")
            width, height = png_size(png)
            if (event.width, event.height) != (width, height):
                fail(f"'samples' epoch {epoch} says {event.width}x{event.height}, the PNG is {width}x{height}")
        print(f"images: {len(grids)} sample grids ({width}x{height} PNG) equal samples-eNNN.png")
    else:
        print("images: the run wrote no sample grids (a model that does not generate)")
    print("tensorboard check: OK")


if __name__ == "__main__":
    main()
