"""Decoding a video into upright RGB frames with PyAV, in a background thread.

PyAV (FFmpeg's libraries in its wheel) demuxes and decodes; each frame is turned upright by its
display matrix (`frame.rotation`, the phone's "rotate" tag) and timed by its own timestamp, so
variable frame rates keep their real times. The thread feeds a bounded queue: decoding overlaps
detection and classification, and at most `QUEUE_FRAMES` frames wait in memory.

A file FFmpeg cannot open, an image (FFmpeg reads a PNG as a one-frame "video") or a file
without a video stream is `HSNetError`; a stream that breaks off (an error while decoding, or
fewer frames or seconds than the container declares) yields what it could decode and then
reports the truncation through `Decoder.error`.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from fractions import Fraction
from typing import Iterator

import numpy as np

from hsnet_jax.errors import HSNetError

QUEUE_FRAMES = 32


@dataclasses.dataclass
class Frame:
    """One decoded frame: its number in the stream, its time in seconds and (when it is one of
    the frames asked for, or all frames are) its upright RGB pixels."""

    index: int
    time_s: float
    pts: int | None
    rgb: np.ndarray | None
    wanted: bool


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    width: int  # upright (rotation applied)
    height: int
    rate: Fraction  # average frame rate
    time_base: Fraction
    frames: int  # declared number of frames (0: unknown)


def require_av():
    """PyAV, or the one-line advice to install it (it is the `video` extra)."""
    try:
        import av
    except ImportError:
        raise HSNetError("videos need PyAV: pip install 'hsnet-jax[video]' (or: pip install av)") from None
    return av


def _open(path: str):
    av = require_av()
    try:
        container = av.open(path)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as e:
        raise HSNetError(f"{path}: cannot read the video ({_reason(e)})") from None
    if not container.streams.video or container.format.name.endswith("_pipe") or "image2" in container.format.name:
        container.close()
        raise HSNetError(f"{path}: not a video (no video stream)")
    return container


def _reason(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__


def upright(frame) -> np.ndarray:
    """The frame as RGB uint8 [H, W, 3], rotated as its display matrix says (counter-clockwise
    by `frame.rotation` degrees, as FFmpeg's player does)."""
    rgb = frame.to_ndarray(format="rgb24")
    turns = round((frame.rotation or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


class Decoder:
    """Iterates `Frame`s of `path` decoded in a thread. `every`: every Nth frame is `wanted`
    (frames 0, N, 2N, ...); `all_pixels`: the other frames carry their pixels too (for the
    annotated copy). After iteration `error` is None or a one-line truncation message."""

    def __init__(self, path: str, every: int = 1, all_pixels: bool = False):
        self.path, self.every, self.all_pixels = path, every, all_pixels
        self.container = _open(path)
        stream = self.container.streams.video[0]
        stream.thread_type = "AUTO"
        self.stream = stream
        first = self._first_frame()
        rotation = round((first.rotation or 0) / 90) % 4
        w, h = (first.height, first.width) if rotation % 2 else (first.width, first.height)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        self.info = VideoInfo(w, h, Fraction(rate), Fraction(stream.time_base), stream.frames or 0)
        self.container.close()  # reopened rather than seeked: every demuxer starts afresh
        self.container = _open(path)
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self.error: str | None = None
        self._queue: queue.Queue = queue.Queue(QUEUE_FRAMES)
        self._stop = threading.Event()

    def _first_frame(self):
        """The first frame: the displayed size and rotation."""
        import av

        try:
            first = next(self.container.decode(self.stream), None)
        except av.FFmpegError as e:
            first, reason = None, _reason(e)
        else:
            reason = "no frame could be decoded"
        if first is None:
            self.container.close()
            raise HSNetError(f"{self.path}: not a video ({reason})")
        return first

    def _run(self) -> None:
        import av

        count, last = 0, 0.0
        try:
            packets = self.container.demux(self.stream)
            while not self._stop.is_set():
                try:
                    packet = next(packets)
                    decoded = self.stream.decode(packet)
                except StopIteration:
                    break
                except av.FFmpegError as e:
                    self.error = f"{self.path}: truncated or damaged after {count} frames ({_reason(e)})"
                    decoded = self._flush()
                for frame in decoded:
                    last = frame.time if frame.time is not None else count / float(self.info.rate)
                    wanted = count % self.every == 0
                    pixels = upright(frame) if wanted or self.all_pixels else None
                    self._queue.put(Frame(count, float(last), frame.pts, pixels, wanted))
                    count += 1
                if self.error:
                    break
            if self.error is None and not self._stop.is_set():
                self.error = self._short(count, last)
        except Exception as e:  # noqa: BLE001 - reported as the video's error line
            self.error = self.error or f"{self.path}: cannot decode the video ({_reason(e)})"
        finally:
            self.container.close()
            self._queue.put(None)

    def _flush(self) -> list:
        """The frames the decoder still holds after a broken packet (it buffers a few)."""
        import av

        try:
            return self.stream.decode(None)
        except av.FFmpegError:
            return []

    def _short(self, count: int, last: float) -> str | None:
        """A truncation message when the stream declared more frames (by more than 2) or a
        longer duration (by more than 3 frames; the container's, when it also holds sound that
        may run longer, by more than 0.5 s) than was decoded."""
        step = 1.0 / float(self.info.rate)
        start = float((self.stream.start_time or 0) * self.info.time_base)
        if self.stream.duration:
            duration, slack = float(self.stream.duration * self.info.time_base) + start, 3 * step
        elif self.container.duration:
            alone = len(self.container.streams) == 1
            duration, slack = self.container.duration / 1e6, 3 * step if alone else max(3 * step, 0.5)
        else:
            duration, slack = None, 0.0
        declared = self.info.frames
        if declared and count < declared - 2 or duration and last + step + slack < duration:
            seen = (f"{count} of {declared} frames" if declared
                    else f"{count} frames, {last + step:.2f} of {duration:.2f} s")
            return f"{self.path}: truncated (decoded {seen})"
        return None

    def __iter__(self) -> Iterator[Frame]:
        thread = threading.Thread(target=self._run, name="video-decode", daemon=True)
        thread.start()
        try:
            while (item := self._queue.get()) is not None:
                yield item
        finally:
            self._stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    self._queue.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()
