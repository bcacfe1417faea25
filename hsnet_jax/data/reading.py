"""Decoding a manual download's image files into one uint8 array, reporting every bad file.

Images are decoded once, at preparation, with PIL in a small thread pool (PIL releases the GIL
while decoding), converted to RGB and resized to the dataset's stored size. A file PIL cannot
decode (unreadable, truncated, not an image) is never dropped silently: preparation stops with
a one-line list of all of them, or with `skip_corrupt` they are left out and returned so the
summary can count them.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Callable, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from hsnet_jax.data.errors import CorruptImageError

# A per-image transform applied after decoding, e.g. the MTCNN face crop: RGB uint8 ->
# ([S, S, 3], flag), the flag marking images it handled by a fallback (no face found).
Transform = Callable[[np.ndarray], tuple[np.ndarray, bool]]


def decode(path: str, size: int) -> np.ndarray:
    """One file -> uint8 [size, size, 3] (bilinear, antialiased when shrinking)."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        if image.size != (size, size):
            image = image.resize((size, size), Image.BILINEAR)
        return np.asarray(image)


def _decode_full(path: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def read_images(paths: Sequence[str], size: int, *, transform: Transform | None = None,
                skip_corrupt: bool = False, desc: str = "decoding",
                ) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Decodes `paths` -> (images [K, size, size, 3], indices of the K kept paths, skipped paths,
    paths the transform flagged).

    Without `transform` each image is decoded and resized to `size` in a few threads; with it,
    images are decoded full size and transformed one at a time in this thread (a face crop
    needs the whole photo; decoding ahead would pile up full-size photos in memory). Raises
    CorruptImageError naming every undecodable file unless `skip_corrupt`.
    """
    images = np.empty((len(paths), size, size, 3), np.uint8)
    failures: list[tuple[int, str]] = []
    flagged: list[str] = []

    def work(i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, decode(paths[i], size) if transform is None else _decode_full(paths[i]), ""
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            return i, None, str(e) or type(e).__name__

    with concurrent.futures.ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        results = pool.map(work, range(len(paths))) if transform is None else map(work, range(len(paths)))
        for i, image, reason in tqdm(results, total=len(paths), desc=desc, unit="img"):
            if image is None:
                failures.append((i, reason))
            elif transform is None:
                images[i] = image
            else:
                images[i], flag = transform(image)
                if flag:
                    flagged.append(paths[i])
    if failures and not skip_corrupt:
        listing = "; ".join(f"{paths[i]} ({reason})" for i, reason in failures)
        raise CorruptImageError(
            f"{len(failures)} image(s) cannot be decoded (rerun with --skip_corrupt to skip and "
            f"count them): {listing}")
    bad = {i for i, _ in failures}
    kept = np.asarray([i for i in range(len(paths)) if i not in bad], np.int64)
    return images[kept] if bad else images, kept, [paths[i] for i, _ in failures], flagged
