"""Video clips built from real photos (tests/photos.py) with PyAV, for the video tests and
benchmarks/video.py: faces that pan and zoom, two faces crossing, a face leaving and coming
back, a phone clip stored sideways with rotation metadata. Each scene is a list of RGB frames
plus where each face was pasted, so tests know the truth."""

from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence

import av
import numpy as np
import skimage.data
from PIL import Image

from tests import photos

BACKGROUND = 70


def astronaut_face(side: int) -> np.ndarray:
    """The astronaut's head and shoulders (her face fills the middle), resized to side x side."""
    return _square(skimage.data.astronaut()[20:260, 120:340], side)


def hopper_face(side: int) -> np.ndarray:
    return _square(photos.grace_hopper()[60:360, 90:420], side)


def _square(image: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(np.ascontiguousarray(image)).resize((side, side), Image.BILINEAR))


def canvas(width: int, height: int, frame: int) -> np.ndarray:
    """A grey background with a faint moving texture (so the encoder has work, as in real video)."""
    y, x = np.mgrid[0:height, 0:width]
    shade = BACKGROUND + 12 * np.sin((x + 3 * frame) / 9.0) * np.cos(y / 11.0)
    return np.repeat(shade[:, :, None], 3, 2).astype(np.uint8)


def paste(picture: np.ndarray, tile: np.ndarray, left: int, top: int) -> tuple[int, int, int, int] | None:
    """Pastes `tile` at (left, top), clipped at the border; its visible rectangle or None."""
    h, w = tile.shape[:2]
    x0, y0, x1, y1 = max(left, 0), max(top, 0), min(left + w, picture.shape[1]), min(top + h, picture.shape[0])
    if x1 <= x0 or y1 <= y0:
        return None
    picture[y0:y1, x0:x1] = tile[y0 - top:y1 - top, x0 - left:x1 - left]
    return x0, y0, x1, y1


def panning(n: int = 16, width: int = 240, height: int = 160) -> list[np.ndarray]:
    """One face moving right and growing (a pan with a zoom)."""
    frames = []
    for k in range(n):
        side = 80 + 2 * k
        frame = canvas(width, height, k)
        paste(frame, astronaut_face(side), 30 + 5 * k, 30 - k)
        frames.append(frame)
    return frames


def crossing(n: int = 16, width: int = 240, height: int = 160) -> list[np.ndarray]:
    """Two faces passing each other: the astronaut from the left, higher, Grace Hopper from the
    right, lower and in front; their pictures overlap in the middle frames."""
    frames = []
    for k in range(n):
        frame = canvas(width, height, k)
        paste(frame, astronaut_face(80), 8 * k, 5)
        paste(frame, hopper_face(80), 160 - 8 * k, 30)
        frames.append(frame)
    return frames


def leaving(n: int = 16, gap: range = range(6, 13), short_gap: int = 3, width: int = 240,
            height: int = 160) -> list[np.ndarray]:
    """A still face, hidden in one frame (`short_gap`: a missed detection the track survives),
    then gone for the frames of `gap` (longer than the tracker's tolerance) and back."""
    face = astronaut_face(90)
    frames = []
    for k in range(n):
        frame = canvas(width, height, k)
        if k != short_gap and k not in gap:
            paste(frame, face, 70, 30)
        frames.append(frame)
    return frames


def write(path: str, frames: Iterable[np.ndarray], rate: int = 25, rotation: int | None = None,
          times: Sequence[float] | None = None, codec: str = "libx264") -> None:
    """Encodes the frames (H.264 by default, yuv444p so colours survive at any size). `rotation`
    stores a display matrix (degrees counter-clockwise, as FFmpeg reports a phone's);
    `times` gives each frame's own timestamp in seconds (a variable frame rate). `frames` may
    be a generator: they are encoded one by one."""
    time_base = Fraction(1, 1000)
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.pix_fmt = "yuv444p" if codec == "libx264" else "yuv420p"
        stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for k, frame in enumerate(frames):
            if k == 0:
                stream.height, stream.width = frame.shape[:2]
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            picture.pts = round((times[k] if times is not None else k / rate) / time_base)
            picture.time_base = time_base
            for packet in stream.encode(picture):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def people(n: int, width: int, height: int, count: int) -> Iterable[np.ndarray]:
    """`count` (1-4) faces a third of the frame's height, side by side, drifting (the
    benchmark's clips); a generator, so long clips are not held in memory."""
    side = height // 3
    tiles = [astronaut_face(side), hopper_face(side), np.fliplr(astronaut_face(side)), np.fliplr(hopper_face(side))]
    for k in range(n):
        frame = canvas(width, height, k)
        for j in range(count):
            left = (2 * j + 1) * width // (2 * count) - side // 2 + round(10 * np.sin(k / 5 + j))
            paste(frame, tiles[j], left, height // 3 + round(8 * np.cos(k / 7 + j)))
        yield frame
