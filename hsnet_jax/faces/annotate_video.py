"""The annotated copy of a video: each frame with every tracked face boxed and labelled
"#<id> <expression> <probability>" (the photo drawing of `hsnet_jax.faces.annotate`), same size
and frame rate, frame times kept (variable frame rates too), sound dropped.

Codec: H.264 when the FFmpeg inside PyAV has an encoder for it (its wheels ship libx264), else
VP9, which browsers read in MP4 and WebM alike, else MPEG-4 part 2 as a last resort. Frames
of even size are stored as yuv420p (what browsers play); odd sizes, which 4:2:0 cannot hold,
as yuv444p. The file is written under a temporary name in the target folder and renamed when
complete, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import os
import tempfile
from fractions import Fraction
from typing import Sequence

import numpy as np

from hsnet_jax.faces import annotate

CODECS = ("libx264", "libopenh264", "libvpx-vp9", "mpeg4")


def encoder() -> str:
    """The first of `CODECS` the installed FFmpeg can encode with."""
    import av

    for name in CODECS:
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError):
            continue
    raise RuntimeError("PyAV's FFmpeg has none of the encoders " + ", ".join(CODECS))


class AnnotatedVideo:
    """`write(rgb, pts, labels)` per frame, then `close()` (or `discard()` on failure)."""

    def __init__(self, path: str, width: int, height: int, rate: Fraction, time_base: Fraction):
        import av

        self.path = path
        folder = os.path.dirname(os.path.abspath(path))
        ext = os.path.splitext(path)[1] or ".mp4"
        fd, self.partial = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=ext, dir=folder)
        os.close(fd)
        self.container = av.open(self.partial, "w", format={".mkv": "matroska", ".webm": "webm",
                                                           ".mov": "mov"}.get(ext.lower(), "mp4"))
        self.codec = "libvpx-vp9" if ext.lower() == ".webm" else encoder()
        self.stream = self.container.add_stream(self.codec, rate=rate)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        if self.codec == "libx264":
            self.stream.options = {"preset": "veryfast"}  # 2-3x the default's speed, CRF 23 kept
        self.stream.time_base = self.stream.codec_context.time_base = time_base
        self.time_base = time_base
        self.last_pts = -1

    def write(self, rgb: np.ndarray, pts: int | None, labels: Sequence[tuple[Sequence[float], str]]) -> None:
        import av

        picture = annotate.draw(rgb, labels) if labels else rgb
        frame = av.VideoFrame.from_ndarray(np.asarray(picture), format="rgb24")
        frame.pts = pts if pts is not None and pts > self.last_pts else self.last_pts + 1
        frame.time_base = self.time_base
        self.last_pts = frame.pts
        for packet in self.stream.encode(frame):
            self.container.mux(packet)

    def close(self) -> str:
        """Flushes the encoder and moves the finished file to its name."""
        try:
            for packet in self.stream.encode():
                self.container.mux(packet)
            self.container.close()
        except BaseException:
            self.discard()
            raise
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        try:
            self.container.close()
        except Exception:  # noqa: BLE001 - the partial file goes anyway
            pass
        if os.path.exists(self.partial):
            os.remove(self.partial)
