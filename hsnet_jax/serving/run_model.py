"""A trained run as the server's model (JAX): its checkpoint loaded and compiled once, faces
found by the JAX MTCNN, as `predict --detect_face --workdir RUN` does."""

from __future__ import annotations

import json
import os
from typing import Any, Sequence

import numpy as np

from hsnet_jax.data.registry import get_builder
from hsnet_jax.faces.crops import detect_faces, detector
from hsnet_jax.faces.mtcnn_procedure import Faces
from hsnet_jax.inference.evaluation import load_run, report_name
from hsnet_jax.inference.metrics import softmax
from hsnet_jax.runtime import checkpoint


class RunModel:
    """The run in `workdir` (checkpoint `which`), classifying up to `max_batch` faces per forward
    pass, padded only to the next power of two."""

    def __init__(self, workdir: str, which: str = "best", max_batch: int = 16):
        config = checkpoint.load_run_config(workdir)
        self.crop_size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
        self.run = load_run(workdir, which, batch_size=max_batch, small_batches=True)
        self.max_batch = max_batch
        self.class_names = list(self.run.class_names)
        self.info = dict(name=os.path.basename(os.path.abspath(workdir)), source="run", dataset=config.dataset,
                         checkpoint=which, classes=self.class_names, input_size=config.image_size,
                         crop_size=self.crop_size, test_metrics=_test_metrics(workdir, config.dataset, which))

    def detect(self, photos: Sequence[np.ndarray], max_side: int | None) -> list[Faces]:
        return detect_faces(photos, max_side)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        return softmax(self.run.predict(crops))

    def warm(self) -> None:
        """Compiles the classifier for each batch it pads to (1, 2, 4, ... `max_batch` faces:
        a lone face is not padded to `max_batch`), and the detector's R-Net and O-Net."""
        size = 1
        while True:
            self.run.predict(np.zeros((min(size, self.max_batch), self.crop_size, self.crop_size, 3), np.uint8))
            if size >= self.max_batch:
                break
            size *= 2
        detector().warm()


def _test_metrics(workdir: str, dataset: str, which: str) -> dict[str, Any] | None:
    """Acc., mAcc. and per-class accuracy of the run's `evaluate` report on its test split, if any."""
    path = os.path.join(workdir, "eval", f"{report_name('test', None, dataset, which)}_metrics.json")
    try:
        with open(path) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    return {key: report.get(key) for key in ("accuracy", "mean_accuracy", "per_class", "num_examples")}
