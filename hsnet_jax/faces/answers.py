"""From photo files to labelled faces: the part of `predict --detect_face` that does not need a
model runtime, shared by `hsnet_jax.predict` (JAX) and `hsnet_jax.deploy` (ONNX Runtime) so both
read, detect, crop and answer in JSON alike. numpy and Pillow only."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from PIL import Image

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces.crop_rule import crop_box
from hsnet_jax.faces.mtcnn_procedure import MIN_FACE_SIZE, Faces, too_small
from hsnet_jax.faces.photo import DECODE_ERRORS, to_rgb, unreadable

Result = dict[str, Any]
FaceCrops = dict[int, list[tuple[list[float], np.ndarray]]]


def read_photo(path: str) -> np.ndarray:
    """The upright RGB uint8 photo; HSNetError naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            return np.asarray(to_rgb(image))
    except DECODE_ERRORS as e:
        raise HSNetError(unreadable(path, e)) from None


def read_photos(paths: Sequence[str], results: list[Result]) -> dict[int, np.ndarray]:
    """{index: photo} of the readable paths; the others get their error in `results`."""
    photos = {}
    for i, path in enumerate(paths):
        try:
            photos[i] = read_photo(path)
        except HSNetError as e:
            results[i]["error"] = str(e)
    return photos


def find_faces(paths: Sequence[str], photos: dict[int, np.ndarray], size: int, largest_face: bool,
               max_side: int | None, results: list[Result],
               detect: Callable[[list[np.ndarray], int | None], list[Faces]]) -> FaceCrops:
    """(box, face crop) per face (largest first; only the largest with `largest_face`) of each
    photo, found by `detect(photos, max_side)`; a photo too small for detection or without a
    face gets an error in `results`."""
    for i in [i for i, photo in photos.items() if too_small(photo)]:
        h, w = photos.pop(i).shape[:2]
        results[i]["error"] = (f"{paths[i]}: {w}x{h} pixels is too small for face detection (MTCNN needs "
                               f"at least {MIN_FACE_SIZE} on each side)")
    order = list(photos)
    faces = {}
    for i, f in zip(order, detect([photos[i] for i in order], max_side)):
        if not len(f):
            results[i]["error"] = f"{paths[i]}: no face found"
            continue
        boxes = f.boxes[:1] if largest_face else f.boxes
        faces[i] = [([round(float(v), 2) for v in box], crop_box(photos[i], box, size)) for box in boxes]
    return faces


def labelled(class_names: Sequence[str], p: np.ndarray) -> Result:
    return {"prediction": class_names[int(np.argmax(p))],
            "probabilities": {name: float(q) for name, q in zip(class_names, p)}}


def answer(results: list[Result], faces: FaceCrops, probabilities: np.ndarray, class_names: Sequence[str],
           detect_face: bool, largest_face: bool) -> dict[int, list[Result]]:
    """Fills `results` with each face's (or whole image's) answer, `probabilities` [faces,
    classes] in the order of `faces`; returns the answers per photo (for annotation)."""
    rows = iter(probabilities)
    answers = {}
    for i, found in faces.items():
        answers[i] = [{"box": box, **labelled(class_names, next(rows))} for box, _ in found]
        if not detect_face:
            del answers[i][0]["box"]
        results[i].update(answers[i][0] if largest_face or not detect_face else {"faces": answers[i]})
    return answers
