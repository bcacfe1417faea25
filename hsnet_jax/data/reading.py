"""Decoding a manual download's image files into one uint8 array, reporting every bad file.

Images are decoded once, at preparation, with PIL in a small thread pool (PIL releases the GIL
while decoding) by `load_rgb` (`hsnet_jax.faces.photo`), the one decoder of this package (prepare and predict): EXIF
orientation applied (a phone photo stored sideways comes out upright), transparency
composited on white, 16-bit greyscale scaled to 8 bits, then RGB; then resized to the
dataset's stored size. A file PIL cannot decode (unreadable, truncated, not an image) is never
dropped silently (a JPEG cut short is one even when it still ends with an end-of-image marker;
a FIFO, device or socket named like an image is one, refused before `open` could block on it:
`hsnet_jax.faces.photo`): preparation stops with a one-line list of all of them, or with
`skip_corrupt` they are left out and returned so the summary can count them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from hsnet_jax.data.errors import CorruptImageError
# The decoder lives in the jax-free hsnet_jax.faces.photo (deploy reads photos with it too).
from hsnet_jax.faces.photo import (BACKGROUND, DECODE_ERRORS, MAX_PIXELS, PixelLimitError, decoded,  # noqa: F401
                                   check_pixels, header_size, load_rgb, open_regular, to_rgb)
from hsnet_jax.runtime.progress import Progress

# A transform applied after decoding, e.g. the MTCNN face crop, to a few full-size images at a
# time (so that same-sized photos are detected as one batch): RGB uint8 images ->
# ([S, S, 3], flag) each, the flag marking images it handled by a fallback (no face found).
Transform = Callable[[Sequence[np.ndarray]], list[tuple[np.ndarray, bool]]]
TRANSFORM_CHUNK = 16  # at most this many full-size images decoded ahead and transformed together,
CHUNK_PIXELS = 12_000_000  # and at most this many pixels (about one phone photo; a larger image alone)


def resize_square(image: Image.Image, size: int) -> np.ndarray:
    """A decoded image -> uint8 [size, size, 3] (bilinear, antialiased when shrinking): what every
    image of a dataset without face crops is stored as."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image)


def decode(path: str, size: int) -> np.ndarray:
    """One file -> uint8 [size, size, 3]: `to_rgb`, then `resize_square`."""
    with decoded(path, MAX_PIXELS) as image:
        return resize_square(to_rgb(image), size)


def pixel_chunks(pixels: Sequence[int]) -> list[list[int]]:
    """Positions 0..len(pixels)-1 in order, in chunks of at most CHUNK_PIXELS pixels (an image
    over it alone) and TRANSFORM_CHUNK images: what full-size decoding keeps in memory at once."""
    out: list[list[int]] = [[]]
    total = 0
    for i, n in enumerate(pixels):
        if out[-1] and (total + n > CHUNK_PIXELS or len(out[-1]) == TRANSFORM_CHUNK):
            out.append([])
            total = 0
        out[-1].append(i)
        total += n
    return [chunk for chunk in out if chunk]


def _header_pixels(path: str) -> int:
    """Width x height from the header; 0 for a file that will fail to decode anyway."""
    try:
        w, h = header_size(path)
        return w * h
    except DECODE_ERRORS:
        return 0


def read_images(paths: Sequence[str], size: int, *, transform: Transform | None = None,
                skip_corrupt: bool = False, desc: str = "decoding", bar: Progress | None = None,
                reasons: dict[str, str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """Decodes `paths` -> (images [K, size, size, 3], indices of the K kept paths, skipped paths,
    paths the transform flagged).

    Images are decoded in a few threads; without `transform` each is resized to `size`, with it
    they are decoded full size and transformed a `pixel_chunks` chunk at a time in this thread (a
    face crop needs the whole photo). Raises
    CorruptImageError naming every undecodable file unless `skip_corrupt`. Preparation calls it
    a chunk at a time with its own progress `bar`, collecting why each file failed in `reasons`.
    """
    images = np.empty((len(paths), size, size, 3), np.uint8)
    failures: list[tuple[int, str]] = []
    flagged: list[str] = []

    def work(i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            return i, decode(paths[i], size) if transform is None else load_rgb(paths[i]), ""
        except DECODE_ERRORS as e:
            return i, None, str(e) or type(e).__name__

    def transformed(chunk: list[tuple[int, np.ndarray]]) -> None:
        for (i, _), (crop, flag) in zip(chunk, transform([image for _, image in chunk])):
            images[i] = crop
            if flag:
                flagged.append(paths[i])

    # With a transform, decode only a chunk ahead: full-size photos would pile up in memory.
    chunks = pixel_chunks([_header_pixels(p) for p in paths]) if transform is not None else [range(len(paths))]
    with concurrent.futures.ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool, \
            contextlib.nullcontext(bar) if bar is not None else Progress(len(paths), desc, "img") as bar:
        for positions in chunks:
            chunk: list[tuple[int, np.ndarray]] = []
            for i, image, reason in pool.map(work, positions):
                if image is None:
                    failures.append((i, reason))
                elif transform is None:
                    images[i] = image
                else:
                    chunk.append((i, image))
                bar.update()
            if chunk:
                transformed(chunk)
    if reasons is not None:
        reasons.update((paths[i], reason) for i, reason in failures)
    if failures and not skip_corrupt:
        listing = "; ".join(f"{paths[i]} ({reason})" for i, reason in failures)
        raise CorruptImageError(
            f"{len(failures)} image(s) cannot be decoded (rerun with --skip_corrupt to skip and "
            f"count them): {listing}")
    bad = {i for i, _ in failures}
    kept = np.asarray([i for i in range(len(paths)) if i not in bad], np.int64)
    return images[kept] if bad else images, kept, [paths[i] for i, _ in failures], flagged
