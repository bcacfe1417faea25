"""Face crops from the boxes a database gives (AffectNet's CSV, ExpW's label.lst), not detected.

The crop is `faces.crop_box`'s, the rule of the MTCNN crops: a square of the box's longer side
x 1.2 around its centre, edge-replicated past the border, resized bilinearly. For speed on
AffectNet-sized photos a JPEG is decoded at a reduced scale (libjpeg's DCT scaling, 1/2, 1/4
or 1/8) when the face square still has at least the stored size there, and the box scaled
alike: the same square, only fewer source pixels decoded. A box of None keeps the whole image
(AffectNet's newer layout ships faces already cropped), resized to the stored size.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from typing import Sequence

import numpy as np
from PIL import Image

from hsnet_jax.runtime.progress import Progress
from hsnet_jax.data.builder import ManualBuilder, Records
from hsnet_jax.faces.crop_rule import MARGIN, crop_box
from hsnet_jax.data.reading import DECODE_ERRORS, resize_square, to_rgb

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in the photo's pixels
EXIF_ORIENTATION = 0x0112


def _draft_scale(image: Image.Image, box: Box, size: int) -> int:
    """The largest of 1, 2, 4, 8 at which the face square keeps `size` pixels (1: not a JPEG, or
    a rotated one, whose box is in the upright photo's coordinates)."""
    if image.format != "JPEG" or image.getexif().get(EXIF_ORIENTATION, 1) != 1:
        return 1
    side = max(box[2] - box[0], box[3] - box[1]) * (1.0 + MARGIN)
    return max([k for k in (1, 2, 4, 8) if side / k >= size] or [1])


def load_face(path: str, box: Box | None, size: int) -> np.ndarray:
    """One photo -> uint8 [size, size, 3]: the face in `box`, or the whole image when None."""
    with Image.open(path) as image:
        if box is None:
            return resize_square(to_rgb(image), size)
        k = _draft_scale(image, box, size)
        if k > 1:
            width, height = image.size
            image.draft("RGB", (math.ceil(width / k), math.ceil(height / k)))
            sx, sy = width / image.size[0], height / image.size[1]
            box = (box[0] / sx, box[1] / sy, box[2] / sx, box[3] / sy)
        return crop_box(np.asarray(to_rgb(image)), box, size)


def read_faces(paths: Sequence[str], boxes: Sequence[Box | None], size: int, bar: Progress,
               reasons: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """(crops [K, size, size, 3], positions of the K decoded); why each other failed -> `reasons`."""
    images = np.empty((len(paths), size, size, 3), np.uint8)
    kept = []

    def work(i: int) -> tuple[int, str]:
        try:
            images[i] = load_face(paths[i], boxes[i], size)
            return i, ""
        except DECODE_ERRORS as e:
            return i, str(e) or type(e).__name__

    with concurrent.futures.ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        for i, reason in pool.map(work, range(len(paths))):
            if reason:
                reasons[paths[i]] = reason
            else:
                kept.append(i)
            bar.update()
    kept = np.asarray(kept, np.int64)
    return (images if len(kept) == len(paths) else images[kept]), kept


class BoxBuilder(ManualBuilder, skip_registration=True):
    """A database whose records carry their face box (metadata "box", not stored)."""

    def _decode(self, records: Records, indices: np.ndarray, bar: Progress, reasons: dict[str, str]
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        images, kept = read_faces([records.paths[i] for i in indices], [records.metadata["box"][i] for i in indices],
                                  self.IMAGE_SIZE, bar, reasons)
        return images, kept, []
