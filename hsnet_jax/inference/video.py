"""Expressions in video: every face of every processed frame detected, tracked and classified.

`predict_video` is one video -> rows; `predict_videos` is the `predict --video` command's
library (several videos, the table, the annotated copies, the timelines, the error lines).

The path is built for throughput, not "predict on each frame as a photo": a thread decodes
(`video_decode.Decoder`, bounded queue) while the main thread finds the faces: MTCNN on the
whole frame every `redetect` processed frames, in batches (frames of one video share a size,
so a batch is one P-Net program per pyramid level), and in the frames between, R-Net and O-Net
alone around where each track expects its face (`track_faces`). It crops them as
`predict --detect_face` does and classifies every face of the batch in one call of the run's
evaluation forward path. The detector, crops and network are those of `predict --detect_face`,
so a frame searched whole gets the boxes and probabilities that command gives the same frame
saved as a lossless photo (every frame with `redetect=1`). Only a batch of frames is held.
"""

from __future__ import annotations

import collections
import functools
import os
from typing import Any, Iterator, Sequence

import numpy as np

from hsnet_jax.runtime import checkpoint
from hsnet_jax.faces.crops import MIN_FACE_SIZE, Faces, crop_box, detect_faces, refind_faces
from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.inference.evaluation import Run, load_run
from hsnet_jax.faces.annotate_video import AnnotatedVideo
from hsnet_jax.faces.tracking import REDETECT, REFIND_GAP_S, Tracker
from hsnet_jax.inference.video_decode import Decoder, Frame
from hsnet_jax.inference.metrics import softmax

PIXELS_PER_BATCH = 2_000_000  # frames per detection batch: 8 at 640x360, 2 at 1280x720
SPAN_FRAMES = 64  # with --annotate and --every: decoded frames held before a batch is forced
# Faces per network call: each call is padded to a whole batch, and a batch of frames holds
# a few faces to a few dozen, not the hundreds of an evaluation batch.
FACE_BATCH = 16


class TruncatedVideo(HSNetError):
    """The video broke off: `rows` holds what was predicted from the decodable part."""

    def __init__(self, message: str, rows: list[dict[str, Any]]):
        super().__init__(message)
        self.rows = rows


class Model:
    """A run ready for faces: its class names and face crop size at once, its network
    (`run`, in batches of `FACE_BATCH`) compiled on first use, so videos without faces cost no
    compilation."""

    def __init__(self, workdir: str, which: str = "best"):
        config = checkpoint.load_run_config(workdir)
        self.size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
        self.class_names = tuple(checkpoint.read_meta(workdir, which)["class_names"])
        self.workdir, self.which = workdir, which

    @functools.cached_property
    def run(self) -> Run:
        return load_run(self.workdir, self.which, batch_size=FACE_BATCH)


class Smoother:
    """Per track, the mean probabilities over the rows of its last `seconds` (the row's own
    frame included): the window (t - seconds, t]."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.windows: dict[int, collections.deque] = {}

    def __call__(self, face: int, time_s: float, p: np.ndarray) -> np.ndarray:
        window = self.windows.setdefault(face, collections.deque())
        window.append((time_s, p))
        while window[0][0] <= time_s - self.seconds:
            window.popleft()
        return np.mean([q for _, q in window], axis=0)


class Cadence:
    """Which processed frames are searched whole: the first, then every `redetect`th, and any
    more than `REFIND_GAP_S` after the previous processed frame (with `--every` on long gaps, or
    a stream's pause, faces move too far between processed frames to be re-found near their
    tracks)."""

    def __init__(self, redetect: int):
        self.redetect, self.since, self.last = redetect, redetect, None

    def __call__(self, time_s: float) -> bool:
        whole = self.since >= self.redetect or self.last is None or time_s - self.last > REFIND_GAP_S
        self.since, self.last = 1 if whole else self.since + 1, time_s
        return whole


def track_faces(frames: Sequence[Frame], tracker: Tracker, whole: Cadence,
                max_side: int | None) -> list[tuple[Frame, Faces, list[int]]]:
    """The faces of consecutive processed frames and their track ids: the frames `whole` picks
    detected in one batch, then frame after frame the others re-found where `tracker` expects
    its faces (each frame's ids before the next frame looks)."""
    keys = [f for f in frames if whole(f.time_s)]
    detected = dict(zip((f.index for f in keys), detect_faces([f.rgb for f in keys], max_side)))
    found = []
    for frame in frames:
        faces = detected[frame.index] if frame.index in detected else \
            refind_faces(frame.rgb, tracker.expected(), max_side)
        found.append((frame, faces, tracker.update(faces.boxes)))
    return found


def _batches(frames: Iterator[Frame], per_batch: int) -> Iterator[list[Frame]]:
    """Consecutive decoded frames, cut after `per_batch` wanted ones or `SPAN_FRAMES` in all."""
    batch: list[Frame] = []
    wanted = 0
    for frame in frames:
        batch.append(frame)
        wanted += frame.wanted
        if wanted == per_batch or len(batch) >= SPAN_FRAMES:
            yield batch
            batch, wanted = [], 0
    if batch:
        yield batch


def _progress(frames: Iterator[Frame], total: int, desc: str) -> Iterator[Frame]:
    """A tqdm bar (frames and frames/s) on stderr when it is a terminal."""
    from tqdm import tqdm

    with tqdm(total=total or None, desc=desc, unit="frame", disable=None, mininterval=0.5) as bar:
        for frame in frames:
            yield frame
            bar.update(1)


def _check_options(every: int, smooth: float | None, redetect: int) -> None:
    if every < 1:
        raise HSNetError(f"--every {every}: must be at least 1")
    if redetect < 1:
        raise HSNetError(f"--redetect {redetect}: must be at least 1")
    if smooth is not None and smooth <= 0:
        raise HSNetError(f"--smooth {smooth}: must be a positive number of seconds")


def predict_video(workdir: str | Model, path: str, every: int = 1, smooth: float | None = None,
                  which: str = "best", max_side: int | None = None, annotate: str | None = None,
                  progress: bool = True, redetect: int = REDETECT) -> list[dict[str, Any]]:
    """One row per face per processed frame (frames 0, every, 2 * every, ...), in frame order:
    {"frame", "time_s", "face_id", "box" [x0, y0, x1, y1], "prediction", <class>: p, ...,
    and with `smooth` "smooth_<class>": the track's mean over the last `smooth` seconds}.

    `workdir` is a run directory (or a loaded `Model`); `annotate` a video file to write the
    labelled copy to. A video that breaks off raises `TruncatedVideo` carrying the rows of its
    decodable part (the annotated copy is still completed); others raise `HSNetError`.
    Faces are detected on the whole frame every `redetect` processed frames (frames 0,
    redetect, ...: 1 is every frame, what `predict --detect_face` does to photos); in between,
    each open track's face is re-found around where the track expects it (`refind_faces`).
    """
    _check_options(every, smooth, redetect)
    model = workdir if isinstance(workdir, Model) else Model(workdir, which)
    decoder = Decoder(path, every, all_pixels=annotate is not None)
    info = decoder.info
    if min(info.width, info.height) < MIN_FACE_SIZE:
        decoder.container.close()
        raise HSNetError(f"{path}: {info.width}x{info.height} pixels is too small for face detection "
                         f"(MTCNN needs at least {MIN_FACE_SIZE} on each side)")
    names = model.class_names
    tracker, smoother = Tracker(), Smoother(smooth) if smooth else None
    writer = AnnotatedVideo(annotate, info.width, info.height, info.rate, info.time_base) if annotate else None
    frames: Iterator[Frame] = iter(decoder)
    if progress:
        frames = _progress(frames, info.frames, os.path.basename(path))
    per_batch = max(1, PIXELS_PER_BATCH // (info.width * info.height))
    rows: list[dict[str, Any]] = []
    labels: list[tuple[list[float], str]] = []
    whole = Cadence(redetect)
    try:
        for batch in _batches(frames, per_batch):
            found = track_faces([f for f in batch if f.wanted], tracker, whole, max_side)
            crops = [crop_box(frame.rgb, box, model.size) for frame, faces, _ in found for box in faces.boxes]
            p = iter(softmax(model.run.predict(np.stack(crops))) if crops else [])
            per_frame = {}
            for frame, faces, ids in found:
                new = [_row(frame, face, box, next(p), names, smoother) for face, box in zip(ids, faces.boxes)]
                rows += new
                per_frame[frame.index] = [(r["box"], f"#{r['face_id']} {r['prediction']} {r[r['prediction']]:.2f}")
                                          for r in new]
            if writer:
                for frame in batch:
                    labels = per_frame.get(frame.index, labels)
                    writer.write(frame.rgb, frame.pts, labels)
    except BaseException:
        if writer:
            writer.discard()
        raise
    if writer:
        writer.close()
    if decoder.error:
        raise TruncatedVideo(decoder.error, rows)
    return rows


def _row(frame: Frame, face: int, box: np.ndarray, p: np.ndarray, names: Sequence[str],
         smoother: Smoother | None) -> dict[str, Any]:
    row = {"frame": frame.index, "time_s": round(frame.time_s, 4), "face_id": face,
           "box": [round(float(v), 2) for v in box], "prediction": names[int(np.argmax(p))]}
    row.update({name: float(q) for name, q in zip(names, p)})
    if smoother is not None:
        row.update({f"smooth_{name}": float(q) for name, q in zip(names, smoother(face, frame.time_s, p))})
    return row


VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".webm")


def _annotated_path(annotate: str | None, video: str, several: bool) -> str | None:
    """--annotate names the file (one video) or, without a video extension, a folder that
    receives <video name>.mp4 per video."""
    if annotate is None:
        return None
    if annotate.lower().endswith(VIDEO_EXTENSIONS):
        if several:
            raise HSNetError(f"--annotate {annotate}: several videos need a folder, not one file")
        return annotate
    return os.path.join(annotate, os.path.splitext(os.path.basename(video))[0] + ".mp4")


def _timeline_path(output: str | None, annotate: str | None, video: str) -> str | None:
    """<video name>_timeline.png beside the table, else beside the annotated video."""
    if output or annotate and annotate.lower().endswith(VIDEO_EXTENSIONS):
        folder = os.path.dirname(os.path.abspath(output or annotate))
    elif annotate:
        folder = annotate
    else:
        return None
    return os.path.join(folder, os.path.splitext(os.path.basename(video))[0] + "_timeline.png")


def predict_videos(workdir: str, videos: Sequence[str], output: str | None = None, annotate: str | None = None,
                   every: int = 1, smooth: float | None = None, which: str = "best", max_side: int | None = None,
                   stdout=None, redetect: int = REDETECT) -> list[str]:
    """`predict --video`: every video's rows in one table (`output`, or CSV on `stdout`), an
    annotated copy and a timeline per video; returns the error lines (one per failed video: not
    a video, truncated after its decodable part, no face found). Unwritable outputs are an
    `HSNetError` before any work."""
    import sys

    from hsnet_jax.inference import timeline, video_table

    _check_options(every, smooth, redetect)
    several = len(videos) > 1
    stems = [os.path.splitext(os.path.basename(v))[0] for v in videos]
    if (output or annotate) and len(set(stems)) < len(stems):
        raise HSNetError("two videos share a name; their annotated copies and timelines would collide: "
                         + ", ".join(sorted({s for s in stems if stems.count(s) > 1})))
    targets = [p for p in [output, *(_annotated_path(annotate, v, several) for v in videos),
                           *(_timeline_path(output, annotate, v) for v in videos)] if p]
    try:
        if annotate and not annotate.lower().endswith(VIDEO_EXTENSIONS):
            os.makedirs(annotate, exist_ok=True)
    except OSError as e:
        raise HSNetError(f"cannot write {annotate}: {e.strerror or e}") from None
    for target in dict.fromkeys(targets):
        try:
            video_table.check_writable(target)
        except OSError as e:
            raise HSNetError(f"cannot write {target}: {e}") from None
    model = Model(workdir, which)
    rows: list[dict[str, Any]] = []
    errors: list[str] = []
    for video in videos:
        try:
            found = predict_video(model, video, every, smooth, which, max_side,
                                  _annotated_path(annotate, video, several), redetect=redetect)
        except TruncatedVideo as e:
            found = e.rows
            errors.append(str(e))
        except HSNetError as e:
            errors.append(str(e))
            continue
        if not found and not any(e.startswith(f"{video}:") for e in errors):
            errors.append(f"{video}: no face found")
        rows += [{"video": video, **row} for row in found]
        if path := _timeline_path(output, annotate, video):
            timeline.plot_timeline(found, model.class_names, path, os.path.basename(video))
    video_table.save(output, rows, model.class_names, smooth is not None, stdout or sys.stdout)
    return errors
