"""Face crops with facenet-pytorch's MTCNN (its weights ship in the wheel; torch loads lazily).

Used when preparing RaFD (100x100 crops) and KDEF (256x256), as in the paper, and by
`predict --detect_face`. The crop is a square around the largest face box MTCNN finds,
enlarged by `margin` (a fraction of the box side) and clamped at the image border by edge
replication, then resized bilinearly.

Rule for images without a detected face (profile views of RaFD, say): preparation keeps the
centre square of the image instead, resized to the crop size, and lists the file under
`no_face` in the dataset's metadata and the prepare summary. Nothing is dropped.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image

DETECT_MAX_SIDE = 512  # images are shrunk to this before detection: faster, same boxes


@functools.lru_cache(maxsize=1)
def _mtcnn():
    import torch  # noqa: F401 -- only face cropping needs torch
    from facenet_pytorch import MTCNN

    return MTCNN(keep_all=False, select_largest=True, device="cpu")


def _square(image: np.ndarray, cy: float, cx: float, side: float, size: int) -> np.ndarray:
    """The square of `side` centred at (cy, cx), edge-replicated past the border, resized to `size`."""
    h, w = image.shape[:2]
    half = side / 2.0
    top, left = int(round(cy - half)), int(round(cx - half))
    n = max(1, int(round(side)))
    rows = np.clip(np.arange(top, top + n), 0, h - 1)
    cols = np.clip(np.arange(left, left + n), 0, w - 1)
    crop = image[rows[:, None], cols[None, :]]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BILINEAR))


def _detect_single_threaded(image: Image.Image):
    """MTCNN's detect with torch on one thread (restored afterwards): its many small
    convolutions run up to 50x faster so on a busy machine than with OpenMP threads."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _mtcnn().detect(image)
    finally:
        torch.set_num_threads(threads)


def detect_face(image_uint8: np.ndarray) -> np.ndarray | None:
    """MTCNN's box (x0, y0, x1, y1) of the largest face in full-image pixels, or None."""
    h, w = image_uint8.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = Image.fromarray(image_uint8)
    if scale < 1.0:
        small = small.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
    boxes, _ = _detect_single_threaded(small)
    if boxes is None or len(boxes) == 0:
        return None
    return np.asarray(boxes[0], np.float64) / scale


def crop_face(image_uint8: np.ndarray, size: int, margin: float = 0.2) -> np.ndarray | None:
    """The largest face as uint8 [size, size, 3], or None when MTCNN finds no face."""
    box = detect_face(image_uint8)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + margin)
    return _square(image_uint8, (y0 + y1) / 2.0, (x0 + x1) / 2.0, side, size)


def centre_crop(image_uint8: np.ndarray, size: int) -> np.ndarray:
    """The centre square of the image, resized to `size` (the no-face fallback)."""
    h, w = image_uint8.shape[:2]
    return _square(image_uint8, (h - 1) / 2.0 + 0.5, (w - 1) / 2.0 + 0.5, min(h, w), size)


def face_or_centre(size: int, margin: float = 0.2):
    """A preparation transform: image -> (crop, True if no face was found and the centre was kept)."""

    def transform(image_uint8: np.ndarray) -> tuple[np.ndarray, bool]:
        crop = crop_face(image_uint8, size, margin)
        return (centre_crop(image_uint8, size), True) if crop is None else (crop, False)

    return transform
