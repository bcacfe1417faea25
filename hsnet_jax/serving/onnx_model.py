"""An export of `convert/export_model.py` as the server's model: ONNX Runtime alone (no jax),
the very `Deployment` that `python -m hsnet_jax.deploy DIR` runs, so the server answers what
deploy prints for the same photo."""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from hsnet_jax.faces.mtcnn_procedure import Faces
from hsnet_jax.inference.deployment import Deployment
from hsnet_jax.inference.metrics import softmax


class OnnxModel:
    """The export in `directory` (its model card and files checked first; `int8`: hsnet.int8.onnx)."""

    def __init__(self, directory: str, int8: bool = False):
        self.deployment = Deployment(directory, int8)
        card = self.deployment.card
        run = card.get("run", {})
        self.crop_size = self.deployment.stored_size
        self.class_names = list(self.deployment.class_names)
        self.info = dict(name=os.path.basename(os.path.abspath(directory)), source="export",
                         dataset=run.get("dataset"), checkpoint=run.get("checkpoint"),
                         weights="int8" if int8 else "float32", classes=self.class_names,
                         input_size=card["input"].get("model_input_size"), crop_size=self.crop_size,
                         test_metrics=run.get("test_metrics"))

    def detect(self, photos: Sequence[np.ndarray], max_side: int | None) -> list[Faces]:
        return self.deployment.detector.detect(photos, max_side)

    def probabilities(self, crops: np.ndarray) -> np.ndarray:
        return softmax(self.deployment.logits(crops))

    def warm(self) -> None:
        """ONNX Runtime compiles nothing ahead: one crop through hsnet.onnx loads its kernels."""
        self.deployment.logits(np.zeros((1, self.crop_size, self.crop_size, 3), np.uint8))
