"""Face detection speed: the JAX MTCNN (`hsnet_jax.faces.detect`) beside facenet-pytorch's MTCNN on one
torch thread, in one run on the same photo, and RaFD preparation projected from a timed sample.

  python benchmarks/faces.py [--repeats 10] [--sample 48]

prints one JSON object:
- detect_*: seconds per detection of a 681x1024 photo (RaFD's size: the astronaut resized),
  full resolution, median over `repeats` runs taken alternately (JAX, torch on one thread,
  torch on all cores, JAX, ...) so all see the same machine load; the JAX figure after its
  one-off compilation (`jax_compile_s`);
- prepare_*: `face_or_centre(100)` as `prepare --dataset rafd` runs it (decode JPEG, detect at
  PREPARE_MAX_SIDE, crop), on `sample` 681x1024 JPEGs through `read_images`; the per-photo time
  after the first chunk (which compiles) times 8,040 is the projection for the whole RaFD.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

if __name__ == "__main__":  # run as a script from a checkout: make `hsnet_jax` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import numpy as np
import skimage.data
import torch
from facenet_pytorch import MTCNN
from PIL import Image

from hsnet_jax.data import reading
from hsnet_jax.faces.crops import PREPARE_MAX_SIDE, detector, face_or_centre

RAFD_SIZE = (681, 1024)  # width, height
RAFD_IMAGES = 8040


def rafd_sized_photo() -> np.ndarray:
    return np.asarray(Image.fromarray(skimage.data.astronaut()).resize(RAFD_SIZE, Image.BILINEAR))


def time_detection(photo: np.ndarray, repeats: int) -> dict[str, float]:
    """Medians of `repeats` alternating runs: JAX (all cores), torch on one thread (the
    issue's yardstick), torch on all cores (what a user of facenet-pytorch gets by default)."""
    threads = torch.get_num_threads()
    facenet = MTCNN(keep_all=True, device="cpu")
    start = time.perf_counter()
    ours = detector().detect(photo[None])[0]
    compile_s = time.perf_counter() - start
    theirs, _ = facenet.detect(photo)
    runs: dict[str, list[float]] = {"jax": [], "torch_1": [], "torch_all": []}
    for _ in range(repeats):
        for name, run in (("jax", lambda: detector().detect(photo[None])), ("torch_1", lambda: facenet.detect(photo)),
                          ("torch_all", lambda: facenet.detect(photo))):
            torch.set_num_threads(1 if name == "torch_1" else threads)
            start = time.perf_counter()
            run()
            runs[name].append(time.perf_counter() - start)
    torch.set_num_threads(threads)
    return {"jax_compile_s": round(compile_s, 2), "detect_jax_s": round(statistics.median(runs["jax"]), 3),
            "detect_torch_1_thread_s": round(statistics.median(runs["torch_1"]), 3),
            f"detect_torch_{threads}_threads_s": round(statistics.median(runs["torch_all"]), 3),
            "faces_jax": len(ours), "faces_torch": 0 if theirs is None else len(theirs)}


def time_preparation(photo: np.ndarray, sample: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i in range(sample):  # tinted copies: every photo decoded and detected afresh
            tinted = np.clip(photo * rng.uniform(0.8, 1.2, 3), 0, 255).astype(np.uint8)
            paths.append(os.path.join(tmp, f"Rafd090_{i:02d}_Caucasian_female_angry_frontal.jpg"))
            Image.fromarray(tinted).save(paths[-1], quality=90)
        transform = face_or_centre(100)
        first = paths[:reading.TRANSFORM_CHUNK]
        start = time.perf_counter()
        reading.read_images(first, 100, transform=transform, desc="first chunk")
        first_s = time.perf_counter() - start
        rest = paths[reading.TRANSFORM_CHUNK:]
        start = time.perf_counter()
        _, _, _, no_face = reading.read_images(rest, 100, transform=transform, desc="timed")
        per_photo = (time.perf_counter() - start) / len(rest)
    return {"prepare_max_side": PREPARE_MAX_SIDE, "prepare_sample": len(rest),
            "prepare_first_chunk_s": round(first_s, 2), "prepare_s_per_photo": round(per_photo, 4),
            "prepare_no_face": len(no_face),
            "prepare_projected_8040_min": round(per_photo * RAFD_IMAGES / 60, 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--sample", type=int, default=48, help="photos prepared (the first chunk compiles)")
    args = parser.parse_args(argv)
    photo = rafd_sized_photo()
    result = {"cpu_count": os.cpu_count(), "load_average": round(os.getloadavg()[0], 1),
              "jax_device": str(jax.devices()[0]), "photo": f"{RAFD_SIZE[0]}x{RAFD_SIZE[1]}"}
    result.update(time_detection(photo, args.repeats))
    result.update(time_preparation(photo, args.sample))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
