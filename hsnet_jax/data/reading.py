"""Decoding a manual download's image files into one uint8 array, reporting every bad file.

Images are decoded once, at preparation, with PIL in a small thread pool (PIL releases the GIL
while decoding) by `load_rgb`, the one decoder of this package (prepare and predict): EXIF
orientation applied (a phone photo stored sideways comes out upright), transparency
composited on white, 16-bit greyscale scaled to 8 bits, then RGB; then resized to the
dataset's stored size. A file PIL cannot decode (unreadable, truncated, not an image) is never
dropped silently (a JPEG cut short is one even when it still ends with an end-of-image marker:
`_ends_early`): preparation stops with a one-line list of all of them, or with
`skip_corrupt` they are left out and returned so the summary can count them. Only regular
files are opened (`open_regular`): a FIFO, device or socket named like an image is such a bad
file, refused before `open` could block on it.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import os
import stat
import warnings
from typing import BinaryIO, Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from hsnet_jax.data.errors import CorruptImageError

# A transform applied after decoding, e.g. the MTCNN face crop, to a few full-size images at a
# time (so that same-sized photos are detected as one batch): RGB uint8 images ->
# ([S, S, 3], flag) each, the flag marking images it handled by a fallback (no face found).
Transform = Callable[[Sequence[np.ndarray]], list[tuple[np.ndarray, bool]]]
TRANSFORM_CHUNK = 16  # at most this many full-size images decoded ahead and transformed together,
CHUNK_PIXELS = 12_000_000  # and at most this many pixels (about one phone photo; a larger image alone)

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
def _decoded(path: str, max_pixels: int) -> Iterator[Image.Image]:
    """The file's image decoded (a regular file, at most `max_pixels` by its header, its data
    complete); one of DECODE_ERRORS otherwise."""
    with open_regular(path) as f:
        data = f.read()
    with _opened(io.BytesIO(data)) as image:
        check_pixels(image.size, max_pixels)
        image.load()
        if _ends_early(image, data):
            raise TruncatedImageError("image data ends early (a file cut short before its end-of-image marker)")
        yield image


def load_rgb(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """One file -> uint8 [H, W, 3] by `to_rgb`; raises one of DECODE_ERRORS when undecodable,
    cut short or over `max_pixels`."""
    with _decoded(path, max_pixels) as image:
        return np.asarray(to_rgb(image))


def header_size(path: str) -> tuple[int, int]:
    """(width, height) from the header alone, nothing decoded; one of DECODE_ERRORS if unreadable."""
    with open_regular(path) as f, _opened(f) as image:
        return image.size


def resize_square(image: Image.Image, size: int) -> np.ndarray:
    """A decoded image -> uint8 [size, size, 3] (bilinear, antialiased when shrinking): what every
    image of a dataset without face crops is stored as."""
    if image.size != (size, size):
        image = image.resize((size, size), Image.BILINEAR)
    return np.asarray(image)


def decode(path: str, size: int) -> np.ndarray:
    """One file -> uint8 [size, size, 3]: `to_rgb`, then `resize_square`."""
    with _decoded(path, MAX_PIXELS) as image:
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
                skip_corrupt: bool = False, desc: str = "decoding", bar: tqdm | None = None,
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
            contextlib.nullcontext(bar) if bar is not None else tqdm(total=len(paths), desc=desc, unit="img") as bar:
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
