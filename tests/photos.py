"""Real photographs with faces for the face-detection tests, from installed packages only:
scikit-image's astronaut (Eileen Collins) and cameraman, matplotlib's Grace Hopper, and
scikit-image's LFW subset (25x25 face crops); `group_photo` tiles them into one picture with
faces of several sizes."""

from __future__ import annotations

import os

import matplotlib
import numpy as np
import skimage.data
from PIL import Image


def grace_hopper() -> np.ndarray:
    path = os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _resized(image: np.ndarray, side: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = side / max(h, w)
    return np.asarray(Image.fromarray(image).resize((round(w * scale), round(h * scale)), Image.BILINEAR))


def group_photo() -> np.ndarray:
    """[600, 900, 3]: the astronaut, Grace Hopper, the cameraman and four LFW faces (100 px)."""
    canvas = np.full((600, 900, 3), 90, np.uint8)
    tiles = [(_resized(skimage.data.astronaut(), 400), 0, 0),
             (_resized(grace_hopper(), 300), 0, 420),
             (_resized(np.repeat(skimage.data.camera()[:, :, None], 3, 2), 200), 380, 420)]
    lfw = skimage.data.lfw_subset()[:4]
    for k, face in enumerate(lfw):
        grey = np.asarray(Image.fromarray(np.uint8(face * 255)).resize((100, 100), Image.BILINEAR))
        tiles.append((np.repeat(grey[:, :, None], 3, 2), 440 if k < 2 else 320, 650 + 120 * (k % 2)))
    for tile, top, left in tiles:
        h, w = tile.shape[:2]
        canvas[top:top + h, left:left + w] = tile
    return canvas
