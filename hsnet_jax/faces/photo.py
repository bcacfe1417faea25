"""Decoding a photo file into upright 8-bit RGB: the one decoder of the package (prepare,
predict, deploy). numpy and Pillow only, so `hsnet_jax.deploy` reads photos as `predict` does.

Only regular files are opened (`open_regular`): a FIFO, device or socket named like an image is
refused before `open` could block on it. An image whose header declares more than `max_pixels`
is never decoded (`check_pixels`). A JPEG cut short is corrupt even when it still ends with an
end-of-image marker (`_ends_early`). 16-bit images are converted in integers, never float64.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import warnings
from typing import BinaryIO, Iterator

import numpy as np
from PIL import Image, ImageOps

# The colour transparent pixels become (RGBA, LA, PA, palette or RGB with a transparent colour).
BACKGROUND = (255, 255, 255)
# What PIL raises for a file it cannot decode.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


# The most pixels an image may declare in its header (checked before decoding): a 633-byte
# JPEG can declare 13000x13000. predict's --max_pixels raises it for predict.
MAX_PIXELS = 50_000_000


class PixelLimitError(OSError):
    """An image whose header declares more than the pixel limit: never decoded."""


def check_pixels(size: tuple[int, int], max_pixels: int = MAX_PIXELS) -> None:
    """PixelLimitError when an image's header `size` (width, height) is over `max_pixels`."""
    w, h = size
    if w * h > max_pixels:
        raise PixelLimitError(f"{w}x{h} is {w * h / 1e6:.1f} megapixels, over the limit of {max_pixels / 1e6:g}")


class NotRegularFileError(OSError):
    """A path that is a FIFO, device, socket or folder: never opened for reading."""


def _kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def open_regular(path: str) -> BinaryIO:
    """`path` opened for reading if it is a regular file; NotRegularFileError before any `open`
    otherwise (opening a FIFO blocks until a writer comes; opening a device can act on it), and
    again after it (O_NONBLOCK, fstat) should the path have been swapped in between."""
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        os.close(fd)
    raise NotRegularFileError(f"not a regular file ({_kind(mode)})")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image -> upright 8-bit RGB: EXIF orientation applied, alpha composited on
    BACKGROUND (so transparent pixels are BACKGROUND whatever colour is stored under them),
    16/32-bit greyscale (I;16, I) scaled from 0..65535 and float (F) clipped to 0..255."""
    image = ImageOps.exif_transpose(image)
    if image.mode == "F":
        image = Image.fromarray(np.clip(np.round(np.asarray(image, np.float32)), 0, 255).astype(np.uint8), "L")
    elif image.mode.startswith("I"):  # integers only: 4 bytes a pixel, never float64's 8
        pixels = np.clip(np.asarray(image), 0, 65535).astype(np.int32, copy=False)
        if image.mode.startswith("I;16") or pixels.max(initial=0) > 255:
            pixels += 128  # in place: (p + 128) // 257 == round(p / 257), 65535 -> 255
            pixels //= 257
        image = Image.fromarray(np.minimum(pixels, 255, out=pixels).astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, BACKGROUND + (255,)), rgba)
    return image.convert("RGB")


JPEG_END = b"\xff\xd9"  # the end-of-image marker
PADDING = bytes(range(1, 129))  # no 0xFF: never read as a marker


class TruncatedImageError(OSError):
    """A JPEG whose image data ends before its last block, though it ends with an end-of-image marker."""


def _ends_early(image: Image.Image, data: bytes) -> bool:
    """Whether the decoded JPEG `image` met its end-of-image marker before its last block.
    libjpeg then fills the missing blocks grey and PIL reports nothing (a JPEG cut short
    without the marker PIL does report). Bytes put before the marker change the picture only
    when the decoder still wanted data: one more decode, of JPEGs only, tells."""
    if image.format != "JPEG" or not data.endswith(JPEG_END):
        return False
    with _opened(io.BytesIO(data[:-len(JPEG_END)] + PADDING + JPEG_END)) as padded:
        try:
            padded.load()
        except DECODE_ERRORS:
            return True
        return padded.tobytes() != image.tobytes()


def _opened(f: BinaryIO) -> Image.Image:
    """Image.open without PIL's decompression-bomb warning (89 to 179 megapixels): our own
    pixel limit (`check_pixels`) decides, in one line; PIL's error above 179 stays."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(f)


@contextlib.contextmanager
def decoded(source: str | BinaryIO, max_pixels: int = MAX_PIXELS) -> Iterator[Image.Image]:
    """The image of a path (a regular file) or of a file object (an upload) decoded: at most
    `max_pixels` by its header, its data complete; one of DECODE_ERRORS otherwise."""
    if isinstance(source, str):
        with open_regular(source) as f:
            data = f.read()
    else:
        data = source.read()
    with _opened(io.BytesIO(data)) as image:
        check_pixels(image.size, max_pixels)
        image.load()
        if _ends_early(image, data):
            raise TruncatedImageError("image data ends early (a file cut short before its end-of-image marker)")
        yield image


def load_rgb(source: str | BinaryIO, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One file (a path or a file object) -> uint8 [H, W, 3] by `to_rgb`; raises one of
    DECODE_ERRORS when undecodable, cut short or over `max_pixels`."""
    with decoded(source, max_pixels) as image:
        return np.asarray(to_rgb(image))


def header_size(path: str) -> tuple[int, int]:
    """(width, height) from the header alone, nothing decoded; one of DECODE_ERRORS if unreadable."""
    with open_regular(path) as f, _opened(f) as image:
        return image.size


def unreadable(path: str, error: Exception) -> str:
    """The one-line reason a photo could not be used (predict and deploy say the same)."""
    hint = "; --max_pixels raises the limit" if isinstance(error, PixelLimitError) else ""
    return f"{path}: cannot read the image ({str(error) or type(error).__name__}{hint})"
