"""An export of `convert/export_model.py` loaded into ONNX Runtime: its model card checked, faces
found by MTCNN's ONNX graphs, expressions from hsnet.onnx.

numpy, Pillow and onnxruntime only (of this package: the jax-free face modules and the numpy
metrics), so `hsnet_jax.deploy` and `hsnet_jax.serve --export` run an export without jax.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any, Sequence

import numpy as np
import onnxruntime

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces import answers
from hsnet_jax.faces.mtcnn_procedure import Networks, Procedure
from hsnet_jax.inference.metrics import softmax  # numpy only

FORMAT_VERSION = 1  # of model.json; a newer one is refused
MODEL_CARD = "model.json"
FILES = ("hsnet.onnx", "mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")  # what deploy runs
INT8_FILE = "hsnet.int8.onnx"
BATCH = 32  # face crops per run of the expression network


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(directory: str, int8: bool = False) -> dict[str, Any]:
    """model.json of an export, after checking it and the files deploy needs (HSNetError, one
    line naming what is wrong)."""
    path = os.path.join(directory, MODEL_CARD)
    if not os.path.isdir(directory):
        raise HSNetError(f"{directory}: not a directory")
    if not os.path.isfile(path):
        raise HSNetError(f"{directory}: not an hsnet export (no {MODEL_CARD}; write one with convert/export_model.py)")
    try:
        with open(path) as f:
            card = json.load(f)
        version, files = card["format_version"], card["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise HSNetError(f"{path}: not a model card ({type(e).__name__}: {e})") from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise HSNetError(f"{path}: format {version} is newer than this hsnet-jax reads "
                         f"({FORMAT_VERSION}); update hsnet-jax")
    needed = FILES[1:] + ((INT8_FILE,) if int8 else FILES[:1])
    for name in needed:
        if not os.path.isfile(os.path.join(directory, name)):
            raise HSNetError(f"{directory}: {name} is missing")
        if name not in files:
            raise HSNetError(f"{path}: no SHA-256 recorded for {name}")
        if sha256(os.path.join(directory, name)) != files[name]:
            raise HSNetError(f"{os.path.join(directory, name)}: SHA-256 differs from {MODEL_CARD}'s "
                             "(the file was changed or damaged)")
    return card


class Deployment:
    """An export loaded into ONNX Runtime: `detect(photos, max_side)` and `logits(crops)`."""

    def __init__(self, directory: str, int8: bool = False, providers: Sequence[str] = ("CPUExecutionProvider",)):
        self.card = read_card(directory, int8)
        self.class_names = tuple(self.card["class_names"])
        self.stored_size = int(self.card["input"]["stored_size"])

        def session(name: str) -> onnxruntime.InferenceSession:
            return onnxruntime.InferenceSession(os.path.join(directory, name), providers=list(providers))

        self.hsnet = session(INT8_FILE if int8 else FILES[0])
        nets = {net: session(f"mtcnn_{net}.onnx") for net in ("pnet", "rnet", "onet")}
        self.detector = Procedure(Networks(*(lambda x, s=nets[net]: s.run(None, {"input": x})
                                             for net in ("pnet", "rnet", "onet"))))

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """uint8 face crops [N, S, S, 3] (S: the stored size) -> float32 logits [N, classes]."""
        return np.concatenate([self.hsnet.run(["logits"], {"images": crops[i:i + BATCH]})[0]
                               for i in range(0, len(crops), BATCH)])

    def predict_files(self, paths: Sequence[str], largest_face: bool = False,
                      max_side: int | None = None) -> list[dict[str, Any]]:
        """`hsnet_jax.inference.prediction.predict_files(..., detect_face=True)`'s results, from this export."""
        results: list[dict[str, Any]] = [{"file": path} for path in paths]
        photos = answers.read_photos(paths, results)
        faces = answers.find_faces(paths, photos, self.stored_size, largest_face, max_side, results,
                                   self.detector.detect)
        if faces:
            logits = self.logits(answers.stacked(faces))
            answers.answer(results, faces, softmax(logits), self.class_names, True, largest_face)
        return results
