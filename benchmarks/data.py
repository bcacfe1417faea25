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

With `--affectnet_images N` it measures AffectNet's preparation instead: N photo-like 400x400
JPEGs with a face box each in AffectNet's CSV layout, prepared as `affectnet/8` (decode at
reduced scale, crop the box, write) and fingerprinted from the download; both are projected to
AffectNet's 287,651 training faces on this machine, with the peak memory of the process (the
preparation streams: it does not grow with N).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
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


AFFECTNET_TRAINING_FACES = 287_651


def write_affectnet_tree(root: str, num_images: int, side: int = 400, seed: int = 0) -> None:
    """AffectNet's CSV layout: `num_images` JPEGs (smooth colour fields plus grain, about a photo's
    size on disk), 90% in training.csv, with a face box of about half the photo and codes 0-7."""
    from hsnet_jax.data.affectnet import HEADER, IMAGE_DIR, LIST_DIR

    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, LIST_DIR))
    lines = {"training.csv": [",".join(HEADER)], "validation.csv": [",".join(HEADER)]}
    for i in range(num_images):
        rel = f"{i % 100}/{i:08x}affectnet.jpg"
        base = Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).resize((side, side), Image.BICUBIC)
        pixels = np.clip(np.asarray(base, np.int16) + rng.normal(0, 6, (side, side, 3)), 0, 255).astype(np.uint8)
        os.makedirs(os.path.join(root, IMAGE_DIR, str(i % 100)), exist_ok=True)
        Image.fromarray(pixels).save(os.path.join(root, IMAGE_DIR, rel), quality=90)
        w = int(rng.integers(side // 3, side * 2 // 3))
        x, y = int(rng.integers(0, side - w)), int(rng.integers(0, side - w))
        points = ";".join(f"{v:.2f}" for v in rng.uniform(x, x + w, 136))
        name = "training.csv" if i % 10 else "validation.csv"
        lines[name].append(f'{rel},{x},{y},{w},{w},"{points}",{i % 8},0.1,-0.2')
    for name, rows in lines.items():
        with open(os.path.join(root, LIST_DIR, name), "w") as f:
            f.write("\n".join(rows) + "\n")


def time_affectnet(num_images: int) -> dict:
    """Seconds to prepare and to fingerprint `num_images` AffectNet-sized photos, projected (wall
    time, which a loaded machine inflates, and the process's CPU time, which it does not)."""
    from hsnet_jax.data.preparation import fingerprint_download

    with tempfile.TemporaryDirectory() as tmp:
        manual, data_dir = os.path.join(tmp, "AffectNet"), os.path.join(tmp, "data")
        write_affectnet_tree(manual, num_images)
        jpeg_bytes = sum(e.stat().st_size for d in os.scandir(os.path.join(manual, "Manually_Annotated_Images"))
                         for e in os.scandir(d))
        start, cpu = time.perf_counter(), time.process_time()
        summary = prepare_dataset("affectnet/8", data_dir=data_dir, manual_dir=manual)
        prepare_s, prepare_cpu_s = time.perf_counter() - start, time.process_time() - cpu
        start = time.perf_counter()
        fingerprint_download("affectnet/8", data_dir, manual)
        fingerprint_s = time.perf_counter() - start
    scale = AFFECTNET_TRAINING_FACES / num_images / 60
    return {
        "affectnet_images": num_images,
        "mean_jpeg_kb": round(jpeg_bytes / num_images / 1024, 1),
        "prepared_images": sum(map(sum, summary["class_counts"].values())),
        "prepare_s": round(prepare_s, 2),
        "prepare_ms_per_image": round(1000 * prepare_s / num_images, 2),
        "projected_prepare_min_for_287651": round(prepare_s * scale, 1),
        # CPU seconds of all threads: what one core would take; 2 idle cores take less (decoding is threaded)
        "prepare_cpu_s": round(prepare_cpu_s, 2),
        "projected_prepare_cpu_min_for_287651": round(prepare_cpu_s * scale, 1),
        "fingerprint_only_s": round(fingerprint_s, 4),
        "projected_fingerprint_only_min_for_287651": round(fingerprint_s * scale, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": [round(v, 2) for v in os.getloadavg()],
    }


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
    parser.add_argument("--affectnet_images", type=int, default=0,
                        help="> 0: measure AffectNet's preparation on this many 400x400 JPEGs instead")
    args = parser.parse_args(argv)
    if args.affectnet_images:
        print(json.dumps(time_affectnet(args.affectnet_images), indent=2))
        return
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
