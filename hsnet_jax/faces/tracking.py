"""Face tracks across video frames: stable ids from box overlap, with a few frames of tolerance.

Each processed frame's face boxes are linked to the open tracks greedily by intersection over
union (IoU), highest first, against where each track is expected: its last box moved by its
velocity (pixels per processed frame, averaged), so faces that pan, zoom or pass each other
keep their ids. A box whose best IoU is under `IOU_THRESHOLD` starts a new track. A track not
matched for more than `MAX_MISSED` processed frames (a face turned away, hidden, or out of the
picture) is closed: a face that comes back after that gets a new id, as the tracker does not
recognise people, it follows boxes. Ids count from 1 in the order tracks start.
"""

from __future__ import annotations

import dataclasses

import numpy as np

IOU_THRESHOLD = 0.3
MAX_MISSED = 5  # processed frames a track survives without a detection
VELOCITY_BLEND = 0.5  # weight of the newest displacement in the running velocity
# Processed frames per whole-frame detection (`predict --video --redetect`); the frames between
# re-find each open track's face where the track expects it (R-Net and O-Net on a few crops,
# `Procedure.refind`: milliseconds, not the pyramid's P-Net).
REDETECT = 5
REFIND_GAP_S = 0.25  # processed frames further apart than this are searched whole


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in a [N, 4] with every box in b [M, 4] (x0, y0, x1, y1): [N, M]."""
    a, b = np.asarray(a, np.float64)[:, None], np.asarray(b, np.float64)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    union = area(a) + area(b) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


@dataclasses.dataclass
class Track:
    id: int
    box: np.ndarray  # last matched box
    velocity: np.ndarray  # box change per processed frame
    seen: int  # processed-frame step of the last match

    def expected(self, step: int) -> np.ndarray:
        return self.box + self.velocity * (step - self.seen)


class Tracker:
    """`update(boxes)` once per processed frame, in order -> the track id of each box."""

    def __init__(self, iou_threshold: float = IOU_THRESHOLD, max_missed: int = MAX_MISSED):
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.tracks: list[Track] = []
        self.step = -1
        self.next_id = 1

    def expected(self) -> np.ndarray:
        """[K, 4]: where each track still open at the next `update` expects its face then."""
        return np.array([t.expected(self.step + 1) for t in self._open(self.step + 1)], np.float64).reshape(-1, 4)

    def _open(self, step: int) -> list[Track]:
        """The tracks not yet closed at processed frame `step` (missed at most `max_missed` frames)."""
        return [t for t in self.tracks if step - t.seen <= self.max_missed + 1]

    def update(self, boxes: np.ndarray) -> list[int]:
        self.step += 1
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        self.tracks = self._open(self.step)
        ids: list[int | None] = [None] * len(boxes)
        if self.tracks and len(boxes):
            overlap = iou(boxes, np.stack([t.expected(self.step) for t in self.tracks]))
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                i, j = divmod(int(flat), len(self.tracks))
                if overlap[i, j] < self.iou_threshold:
                    break
                track = self.tracks[j]
                if ids[i] is not None or track.seen == self.step:
                    continue
                moved = (boxes[i] - track.box) / (self.step - track.seen)
                track.velocity = VELOCITY_BLEND * moved + (1 - VELOCITY_BLEND) * track.velocity
                track.box, track.seen, ids[i] = boxes[i], self.step, track.id
        for i in range(len(boxes)):
            if ids[i] is None:
                self.tracks.append(Track(self.next_id, boxes[i], np.zeros(4), self.step))
                ids[i], self.next_id = self.next_id, self.next_id + 1
        return [int(i) for i in ids]
