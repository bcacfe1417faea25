"""`python -m benchmarks.data`: how fast the data path is, printed as JSON.

Writes a RAF-DB-layout tree of random 100x100 JPEGs (15,000 by default, RAF-DB's size; noise
is the worst case for JPEG decoding) into a temporary directory, then times
- prepare: `prepare_dataset("raf_db")` (decode, split, write array_record), seconds;
- load: the train split into host memory, seconds;
- augment: `augment_batch` under jit on the default JAX device, images per second for
  batches of 256 images 100 -> 224 (after one compiling call);
- deliver: images per second each data placement (`hsnet_jax.training.placement`) puts on the
  devices as the train step's batches (`device`: gathered there from the resident split by
  index; `host`: rows gathered in memory and put there; `stream`: rows read by Grain from
  the array_record files and put there), after one untimed pass.
The train step's own speed in each placement: `python -m benchmarks.placements`.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import jax
import numpy as np
from PIL import Image

from hsnet_jax.data.augment import augment_batch
from hsnet_jax.runtime.devices import make_mesh
from hsnet_jax.data.loading import SplitSource, open_split
from hsnet_jax.training.placement import build_feeder
from hsnet_jax.data.preparation import prepare_dataset
from hsnet_jax.data.raf_db import IMAGE_DIR, LABEL_FILE


def write_raf_db_tree(root: str, num_images: int, seed: int = 0) -> None:
    """RAF-DB's layout: 80% train_*, 20% test_*, labels 1..7 round-robin."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, IMAGE_DIR))
    os.makedirs(os.path.dirname(os.path.join(root, LABEL_FILE)))
    num_train = num_images * 4 // 5
    lines = []
    for i in range(num_images):
        split, n = ("train", i + 1) if i < num_train else ("test", i - num_train + 1)
        name = f"{split}_{n:05d}"
        lines.append(f"{name}.jpg {i % 7 + 1}")
        pixels = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(os.path.join(root, IMAGE_DIR, f"{name}_aligned.jpg"), quality=90)
    with open(os.path.join(root, LABEL_FILE), "w") as f:
        f.write("\n".join(lines) + "\n")


def time_augment(images: np.ndarray, batch_size: int, image_size: int, steps: int) -> float:
    """Images per second of jitted `augment_batch` on device-resident batches."""
    fn = jax.jit(augment_batch, static_argnums=(2,))
    batch = jax.device_put(images[:batch_size])
    fn(jax.random.key(0), batch, image_size).block_until_ready()  # compile
    start = time.perf_counter()
    for step in range(steps):
        out = fn(jax.random.key(step + 1), batch, image_size)
    out.block_until_ready()
    return steps * batch_size / (time.perf_counter() - start)


def time_delivery(source: SplitSource, batch_size: int, steps: int) -> dict[str, float]:
    """Images per second each placement delivers onto the devices, one batch per dispatch."""
    mesh = make_mesh()
    split = source.load()
    n = min(steps, len(source) // batch_size)
    rows = np.random.default_rng(0).permutation(len(source))[: n * batch_size].reshape(n, batch_size)
    gather = jax.jit(lambda images, labels, idx: (images[idx], labels[idx]))
    result = {}
    for placement in ("device", "host", "stream"):
        feeder = build_feeder(placement, mesh, source, split)
        for timed in (False, True):
            start = time.perf_counter()
            for _, inputs in feeder.dispatches(rows, 0, 1):
                jax.block_until_ready(inputs if feeder.gathered else gather(*inputs))
        result[placement] = round(n * batch_size / (time.perf_counter() - start), 1)
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=15000)
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        manual, data_dir = os.path.join(tmp, "RAF-DB"), os.path.join(tmp, "data")
        start = time.perf_counter()
        write_raf_db_tree(manual, args.num_images)
        write_s = time.perf_counter() - start

        start = time.perf_counter()
        summary = prepare_dataset("raf_db", data_dir=data_dir, manual_dir=manual)
        prepare_s = time.perf_counter() - start

        start = time.perf_counter()
        source = open_split("raf_db", "train", data_dir)
        train = source.load()
        load_s = time.perf_counter() - start

        augment_ips = time_augment(train.images, args.batch_size, args.image_size, args.steps)
        delivered = time_delivery(source, args.batch_size, args.steps)
    result = {
        "num_images": args.num_images,
        "cpu_count": os.cpu_count(),
        "jax_device": str(jax.devices()[0]),
        "write_jpegs_s": round(write_s, 2),
        "prepare_s": round(prepare_s, 2),
        "prepared_images": sum(map(sum, summary["class_counts"].values())),
        "load_train_s": round(load_s, 2),
        "train_images": len(train),
        "train_bytes": int(train.images.nbytes),
        "augment_batch_size": args.batch_size,
        "augment_image_size": args.image_size,
        "augment_images_per_s": round(augment_ips, 1),
        "delivered_images_per_s": delivered,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
