"""The server's work: `predict --detect_face` on a batch of uploads, for any model behind it.

Each batch goes predict's way (`hsnet_jax.faces.answers`: `read_photo`, `find_faces`,
`labelled_faces`): decoded, every face found by MTCNN (each photo detected on its own, so an
answer never depends on the other requests of its batch), all the batch's faces classified in
one call. An upload's answer is predict's JSON for it, `{"file", "faces": [{"box",
"prediction", "probabilities"}]}`, with an HTTP status: 200, 400 for a file Pillow recognised
but cannot decode, 422 for a photo without a face or too small for detection (`{"file",
"error"}` as predict writes it).

The model is a trained run (`serving/run_model.py`, JAX) or an export of
`convert/export_model.py` (`serving/onnx_model.py`, ONNX Runtime). This module imports neither
runtime: numpy, Pillow and the jax-free face modules only.
"""

from __future__ import annotations

import io
import time
from typing import Any, Protocol, Sequence

import numpy as np

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces.answers import find_faces, labelled_faces, read_photo, stacked
from hsnet_jax.faces.mtcnn_procedure import Faces
from hsnet_jax.inference.metrics import check_finite
from hsnet_jax.serving.uploads import Upload

# The sizes warmed at start-up: webcam frames the page sends (its longer side is 480) and the
# shapes its tests and benchmark send. Other photo sizes compile their detector programs on
# first use (about a second each with JAX; similar sizes share them).
WARM_SHAPES = ((360, 480), (480, 360), (270, 480))


class Model(Protocol):
    """What the server needs of a model: its card for GET /model, the size its face crops are
    stored at, its classes, MTCNN, and class probabilities for a stack of crops."""

    info: dict[str, Any]
    crop_size: int
    class_names: Sequence[str]

    def detect(self, photos: Sequence[np.ndarray], max_side: int | None) -> list[Faces]: ...

    def probabilities(self, crops: np.ndarray) -> np.ndarray: ...

    def warm(self) -> None: ...


class Predictor:
    """A model behind `predict(uploads) -> [(status, answer), ...]`."""

    def __init__(self, model: Model, max_side: int | None = 1024):
        self.model, self.max_side = model, max_side
        self.info = dict(model.info, max_side=max_side)

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
        faces = find_faces(names, photos, self.model.crop_size, False, self.max_side, results, self.model.detect)
        if faces:
            probabilities = self.model.probabilities(stacked(faces))
            check_finite(probabilities, "the demo server's model")
            for i, answers in labelled_faces(faces, probabilities, self.model.class_names).items():
                results[i]["faces"] = answers
        return [(200 if "faces" in r else 400 if i in undecoded else 422, r) for i, r in enumerate(results)]

    def warm(self) -> float:
        """The model's own warm-up, then MTCNN on WARM_SHAPES (every photo is detected on its
        own, so one program per pyramid level of a size serves any number of concurrent
        requests); the seconds taken."""
        start = time.perf_counter()
        self.model.warm()
        self.model.detect([np.zeros((*shape, 3), np.uint8) for shape in WARM_SHAPES], self.max_side)
        return time.perf_counter() - start
