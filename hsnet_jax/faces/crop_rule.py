"""The face crop rule (numpy and Pillow only; prepare, predict and deploy crop with it): a
square around a face box, enlarged by `margin` (a fraction of the box's longer side), clamped
at the image border by edge replication, resized bilinearly."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image

MARGIN = 0.2


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
