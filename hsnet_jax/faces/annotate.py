"""Pictures of `predict`'s answers: each face boxed and labelled "<expression> <probability>".

Line width and font size follow the picture's longer side (a 4000-pixel photo gets a 100-pixel
label, a 200-pixel one an 11-pixel label), so the label is readable at either size.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_COLOUR = (255, 221, 0)
TEXT_COLOUR = (0, 0, 0)


def draw(image_uint8: np.ndarray, labels: Sequence[tuple[Sequence[float], str]]) -> Image.Image:
    """A copy of the RGB image with each (box x0, y0, x1, y1; text) drawn: the box outlined, the
    text on a filled band above it (inside the box where there is no room above)."""
    picture = Image.fromarray(image_uint8).convert("RGB")
    side = max(picture.size)
    width = max(1, round(side / 300))
    font = ImageFont.load_default(size=max(11, round(side / 40)))
    pen = ImageDraw.Draw(picture)
    for box, _ in labels:  # boxes first: a neighbour's label may cover a box, never a label
        pen.rectangle(tuple(float(v) for v in box), outline=BOX_COLOUR, width=width)
    pad = width
    for box, text in labels:
        x0, y0 = float(box[0]), float(box[1])
        left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
        band_w, band_h = right - left + 2 * pad, bottom - top + 2 * pad
        x = max(0.0, min(x0, picture.width - band_w))  # kept inside the picture
        y = y0 - band_h if y0 - band_h >= 0 else y0
        pen.rectangle((x, y, x + band_w, y + band_h), fill=BOX_COLOUR)
        pen.text((x + pad - left, y + pad - top), text, fill=TEXT_COLOUR, font=font)
    return picture


def output_path(directory: str, source: str, taken: set[str]) -> str:
    """DIR/<source's file name>, made unique among `taken` (a-1.jpg, a-2.jpg, ...); a name whose
    extension PIL cannot write gets .png."""
    name = os.path.basename(source)
    stem, ext = os.path.splitext(name)
    if ext.lower() not in Image.registered_extensions() or \
            Image.registered_extensions()[ext.lower()] not in Image.SAVE:
        ext = ext + ".png"
    candidate, n = stem + ext, 1
    while candidate in taken:
        candidate, n = f"{stem}-{n}{ext}", n + 1
    taken.add(candidate)
    return os.path.join(directory, candidate)


def save(picture: Image.Image, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    picture.save(path, quality=95) if path.lower().endswith((".jpg", ".jpeg")) else picture.save(path)
