"""The server's model: `predict --detect_face` on a batch of uploads, loaded and compiled once.

Each batch goes predict's way (`hsnet_jax.faces.answers`: `read_photo`, `find_faces`;
`hsnet_jax.inference.prediction.classify_faces`): decoded, every face found by MTCNN (each photo
detected on its own, so an answer never depends on the other requests of its batch),
all the batch's faces classified in one padded forward pass of `max_batch` faces. An upload's
answer is predict's JSON for it, `{"file", "faces": [{"box", "prediction", "probabilities"}]}`,
with an HTTP status: 200, 400 for a file Pillow recognised but cannot decode, 422 for a photo
without a face or too small for detection (`{"file", "error"}` as predict writes it).
"""

from __future__ import annotations

import io
import json
import os
import time
from typing import Any, Sequence

import numpy as np

from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.faces.answers import find_faces, read_photo
from hsnet_jax.faces.crops import detect_faces, detector
from hsnet_jax.inference.evaluation import load_run, report_name
from hsnet_jax.inference.prediction import classify_faces
from hsnet_jax.runtime import checkpoint
from hsnet_jax.serving.uploads import Upload

# The sizes warmed at start-up: webcam frames the page sends (its longer side is 480) and the
# shapes its tests and benchmark send. Other photo sizes compile their detector programs on
# first use (about a second each; similar sizes share them).
WARM_SHAPES = ((360, 480), (480, 360), (270, 480))


class Predictor:
    """A run's checkpoint behind `predict(uploads) -> [(status, answer), ...]`."""

    def __init__(self, workdir: str, which: str = "best", max_batch: int = 16, max_side: int | None = 1024):
        config = checkpoint.load_run_config(workdir)
        self.crop_size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
        self.max_side, self.max_batch = max_side, max_batch
        self.run = load_run(workdir, which, batch_size=max_batch)
        self.info = dict(name=os.path.basename(os.path.abspath(workdir)), dataset=config.dataset,
                         checkpoint=which, classes=list(self.run.class_names), input_size=config.image_size,
                         crop_size=self.crop_size, max_side=max_side,
                         test_metrics=_test_metrics(workdir, config.dataset, which))

    def predict(self, uploads: Sequence[Upload]) -> list[tuple[int, dict[str, Any]]]:
        names = [u.name for u in uploads]
        results: list[dict[str, Any]] = [{"file": name} for name in names]
        photos: dict[int, np.ndarray] = {}
        for i, upload in enumerate(uploads):
            try:
                photos[i] = read_photo(io.BytesIO(upload.data), upload.name)
            except HSNetError as e:
                results[i]["error"] = str(e)
        undecoded = set(range(len(uploads))) - set(photos)
        faces = find_faces(names, photos, self.crop_size, False, self.max_side, results, detect_faces)
        if faces:
            for i, answers in classify_faces(self.run, faces).items():
                results[i]["faces"] = answers
        return [(200 if "faces" in r else 400 if i in undecoded else 422, r) for i, r in enumerate(results)]

    def warm(self) -> float:
        """Compiles the classifier, the detector's R-Net and O-Net, and its P-Net programs for
        WARM_SHAPES (every photo is detected on its own, so one program per pyramid level of a
        size serves any number of concurrent requests); the seconds taken."""
        start = time.perf_counter()
        self.run.predict(np.zeros((1, self.crop_size, self.crop_size, 3), np.uint8))
        detector().warm()
        detect_faces([np.zeros((*shape, 3), np.uint8) for shape in WARM_SHAPES], self.max_side)
        return time.perf_counter() - start


def _test_metrics(workdir: str, dataset: str, which: str) -> dict[str, Any] | None:
    """Acc., mAcc. and per-class accuracy of the run's `evaluate` report on its test split, if any."""
    path = os.path.join(workdir, "eval", f"{report_name('test', None, dataset, which)}_metrics.json")
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    return {key: report.get(key) for key in ("accuracy", "mean_accuracy", "per_class", "num_examples")}
