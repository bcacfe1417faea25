"""Pictures of `predict`'s answers: each face boxed and labelled "<expression> <probability>".

Line width and font size follow the picture's longer side (a 4000-pixel photo gets a 100-pixel
label, a 200-pixel one an 11-pixel label), so the label is readable at either size.

Nothing a user passed in is ever modified: `plan` refuses a folder that holds an input and
names already taken (unless `overwrite`) before any prediction work, and `save` creates each
file exclusively without following a symlink planted in its place.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hsnet_jax.errors import HSNetError

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


def plan(directory: str, sources: Sequence[str], overwrite: bool = False) -> list[str]:
    """The output path of each source in `directory` (created if missing), checked before any
    work: one-line HSNetError when the folder holds an input, is not a writable folder, or
    (without `overwrite`) an output name is already taken."""
    folder = os.path.realpath(directory)
    for source in sources:
        if folder in (os.path.dirname(os.path.realpath(source)), os.path.dirname(os.path.abspath(source))):
            raise HSNetError(f"--annotate {directory}: holds the input {source}; choose another folder")
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as e:
        raise HSNetError(f"--annotate {directory}: cannot create the folder ({e.strerror})") from None
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        raise HSNetError(f"--annotate {directory}: not a writable folder")
    taken: set[str] = set()
    targets = [output_path(directory, source, taken) for source in sources]
    for target in targets:
        if os.path.lexists(target) and (not overwrite or os.path.isdir(target)):
            raise HSNetError(f"--annotate {directory}: {target} exists (rerun with --overwrite to replace it)")
    return targets


def save(picture: Image.Image, path: str, overwrite: bool = False) -> None:
    """Writes `picture` to a new file at `path` (O_EXCL | O_NOFOLLOW: never through a symlink,
    never over a file unless `overwrite`, which unlinks the old entry first)."""
    ext = os.path.splitext(path)[1].lower()
    image_format = Image.registered_extensions()[ext]
    try:
        if overwrite and os.path.lexists(path):
            os.unlink(path)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise HSNetError(f"{path}: cannot create the annotated copy ({e.strerror})") from None
    with os.fdopen(fd, "wb") as f:
        picture.save(f, image_format, **({"quality": 95} if image_format == "JPEG" else {}))
