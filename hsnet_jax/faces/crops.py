"""Face boxes and face crops with MTCNN (`hsnet_jax.faces.detect`: Flax networks, the ported weights
of facenet-pytorch shipped in the package; no torch).

Used when preparing RaFD (100x100 crops) and KDEF (256x256), as in the paper, CK+ and JAFFE,
and by `predict --detect_face`; AffectNet and ExpW give their boxes (data/boxes.py) and are
cropped by the same rule (`crop_box`). The crop is a square around a face box, enlarged by `margin` (a
fraction of the box's longer side) and clamped at the image border by edge replication, then
resized bilinearly; preparation crops the largest face.

Rule for images without a detected face (profile views of RaFD, say, or an image under 20
pixels on its short side, too small for MTCNN's smallest 12-pixel window at min_face_size 20):
preparation keeps the centre square of the image instead, resized to the crop size, and lists
the file under `no_face` in the dataset's metadata and the prepare summary. Nothing is dropped.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np
from PIL import Image

from hsnet_jax.faces.detect import MIN_FACE_SIZE, Detector, Faces

# Preparation detects on the photo shrunk to this side (RaFD 681x1024 -> 341x512: ~4x fewer
# pixels; its faces are 200+ px, far above MTCNN's 20-px minimum). `predict` detects at full
# resolution unless told otherwise (`--max_side`).
PREPARE_MAX_SIDE = 512
MARGIN = 0.2


@functools.lru_cache(maxsize=1)
def detector() -> Detector:
    return Detector()


def too_small(image: np.ndarray) -> bool:
    """True for an image whose short side is under MTCNN's minimum face size (no pyramid level)."""
    return min(image.shape[:2]) < MIN_FACE_SIZE


def _shrunk(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    h, w = image.shape[:2]
    scale = 1.0 if max_side is None else min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR)), scale


def detect_faces(images: Sequence[np.ndarray], max_side: int | None = None) -> list[Faces]:
    """Every face of each RGB uint8 image, largest first, in the image's pixel coordinates.

    Images larger than `max_side` are shrunk (bilinear) for detection and the boxes scaled back;
    images of the same (shrunk) size are detected as one batch.
    """
    shrunk = [_shrunk(np.asarray(image), max_side) for image in images]
    results: list[Faces | None] = [None] * len(images)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, (image, _) in enumerate(shrunk):
        by_shape.setdefault(image.shape, []).append(i)
    for shape, members in by_shape.items():
        found = detector().detect(np.stack([shrunk[i][0] for i in members]))
        for i, faces in zip(members, found):
            s = np.float32(shrunk[i][1])
            results[i] = faces if s == 1 else Faces(faces.boxes / s, faces.probs, faces.landmarks / s)
    return results


def _corner(cy: float, cx: float, side: float) -> tuple[int, int, int]:
    """(top, left, n): the pixel square of `side` centred at (cy, cx)."""
    half = side / 2.0
    return int(round(cy - half)), int(round(cx - half)), max(1, int(round(side)))


def box_square(box: Sequence[float], margin: float = MARGIN) -> tuple[int, int, int]:
    """(top, left, n): the square `crop_box` cuts around `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return _corner((y0 + y1) / 2.0, (x0 + x1) / 2.0, max(x1 - x0, y1 - y0) * (1.0 + margin))


def points_in_crop(points: np.ndarray, box: Sequence[float], size: int, margin: float = MARGIN) -> np.ndarray:
    """Image points [K, 2] (x, y) -> their place in `crop_box(image, box, size, margin)`."""
    top, left, n = box_square(box, margin)
    return (np.asarray(points, np.float64) - (left, top)) * (size / n)


def _square(image: np.ndarray, cy: float, cx: float, side: float, size: int) -> np.ndarray:
    """The square of `side` centred at (cy, cx), edge-replicated past the border, resized to `size`."""
    h, w = image.shape[:2]
    top, left, n = _corner(cy, cx, side)
    rows = np.clip(np.arange(top, top + n), 0, h - 1)
    cols = np.clip(np.arange(left, left + n), 0, w - 1)
    crop = image[rows[:, None], cols[None, :]]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))


def crop_box(image_uint8: np.ndarray, box: Sequence[float], size: int, margin: float = MARGIN) -> np.ndarray:
    """The face in `box` (x0, y0, x1, y1) as uint8 [size, size, 3]: a square of the box's longer
    side * (1 + margin) around its centre."""
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    return _square(image_uint8, (y0 + y1) / 2.0, (x0 + x1) / 2.0, side, size)


def centre_crop(image_uint8: np.ndarray, size: int) -> np.ndarray:
    """The centre square of the image, resized to `size` (the no-face fallback)."""
    h, w = image_uint8.shape[:2]
    return _square(image_uint8, (h - 1) / 2.0 + 0.5, (w - 1) / 2.0 + 0.5, min(h, w), size)


def face_or_centre(size: int, margin: float = MARGIN, max_side: int | None = PREPARE_MAX_SIDE):
    """A preparation transform on a list of images: each -> (crop of its largest face, or its
    centre square and True when no face was found)."""

    def transform(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, bool]]:
        found = detect_faces(images, max_side)
        return [(crop_box(image, faces.boxes[0], size, margin), False) if len(faces)
                else (centre_crop(image, size), True) for image, faces in zip(images, found)]

    return transform
