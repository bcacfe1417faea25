"""From photo files to labelled faces and the table printed: the part of `predict --detect_face`
that does not need a model runtime, shared by `hsnet_jax.predict` (JAX) and `hsnet_jax.deploy` (ONNX Runtime) so both
read, detect, crop and answer in JSON alike. numpy and Pillow only."""

from __future__ import annotations

from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence

import numpy as np

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces.crop_rule import crop_box
from hsnet_jax.faces.mtcnn_procedure import MIN_FACE_SIZE, Faces, too_small
from hsnet_jax.faces.photo import DECODE_ERRORS, MAX_PIXELS, load_rgb, unreadable

Result = dict[str, Any]
FaceCrops = dict[int, list[tuple[list[float], np.ndarray]]]


def read_photo(path: str | BinaryIO, name: str | None = None, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The upright RGB uint8 photo from a file path or a file object (an upload, named `name`);
    HSNetError naming the file when it cannot be decoded, is cut short, is not a regular file or
    declares more than `max_pixels` in its header (then never decoded)."""
    try:
        return load_rgb(path, max_pixels)
    except DECODE_ERRORS as e:
        raise HSNetError(unreadable(name or path, e)) from None


def read_photos(paths: Sequence[str], results: list[Result], max_pixels: int = MAX_PIXELS,
                indices: Sequence[int] | None = None) -> dict[int, np.ndarray]:
    """{index: photo} of the readable paths (those at `indices`, default all); the others get
    their error in `results`."""
    photos = {}
    for i in range(len(paths)) if indices is None else indices:
        try:
            photos[i] = read_photo(paths[i], max_pixels=max_pixels)
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


def stacked(faces: FaceCrops) -> np.ndarray:
    """Every crop of `find_faces`' answer as one [faces, S, S, 3] array, photo after photo: the
    order `labelled_faces` and `answer` read the probabilities in."""
    return np.stack([crop for i in faces for _, crop in faces[i]])


def labelled(class_names: Sequence[str], p: np.ndarray) -> Result:
    return {"prediction": class_names[int(np.argmax(p))],
            "probabilities": {name: float(q) for name, q in zip(class_names, p)}}


def labelled_faces(faces: FaceCrops, probabilities: np.ndarray, class_names: Sequence[str]) -> dict[int, list[Result]]:
    """{"box", "prediction", "probabilities"} per face of each photo, from `probabilities` [faces,
    classes] in the order of `faces` (every face of every photo classified in one pass)."""
    rows = iter(probabilities)
    return {i: [{"box": box, **labelled(class_names, next(rows))} for box, _ in found] for i, found in faces.items()}


def answer(results: list[Result], faces: FaceCrops, probabilities: np.ndarray, class_names: Sequence[str],
           detect_face: bool, largest_face: bool) -> dict[int, list[Result]]:
    """Fills `results` with each face's (or whole image's) answer from `probabilities` [faces,
    classes] in the order of `faces` (`hsnet_jax.inference.metrics.softmax` of the logits: float64,
    the same numbers from the same logits whatever runtime made them); returns the answers per
    photo (for annotation)."""
    answers = labelled_faces(faces, probabilities, class_names)
    for i in faces:
        if not detect_face:
            del answers[i][0]["box"]
        results[i].update(answers[i][0] if largest_face or not detect_face else {"faces": answers[i]})
    return answers


def _rows(results: list[dict[str, Any]]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(file, face number, box, answer) per predicted face or image."""
    rows = []
    for r in results:
        if "faces" in r:
            rows += [(r["file"], str(n), ",".join(f"{v:.0f}" for v in f["box"]), f)
                     for n, f in enumerate(r["faces"], 1)]
        elif "prediction" in r:
            rows.append((r["file"], "", ",".join(f"{v:.0f}" for v in r["box"]) if "box" in r else "", r))
    return rows


BOX_WIDTH = len("9999,9999,9999,9999")  # the box column's width, fixed: rows are printed as they come


def table_lines(results: Iterable[dict[str, Any]], image_width: int) -> Iterator[str]:
    """The table a row at a time (the header before the first): file, [face number, box
    x0,y0,x1,y1,] predicted expression, then each class's probability; columns as wide as
    `image_width` (the longest file name), BOX_WIDTH and the longest class name."""
    layout = None
    for file, face, box, answer in (row for r in results for row in _rows([r])):
        if layout is None:
            names = list(answer["probabilities"])
            widths = [max(len("image"), image_width)] + ([len("face"), BOX_WIDTH] if box else []) + \
                [max(len("prediction"), *map(len, names))]
            layout = (names, widths, [max(len(n), 6) for n in names])
            titles = ["image"] + (["face", "box"] if box else []) + ["prediction"]
            yield "  ".join(f"{t:<{w}}" for t, w in zip(titles, widths)) + "  " + \
                "  ".join(f"{n:>{w}}" for n, w in zip(names, layout[2]))
        names, widths, p_widths = layout
        values = [file] + ([face, box] if widths[1:-1] else []) + [answer["prediction"]]
        yield "  ".join(f"{v:<{w}}" for v, w in zip(values, widths)) + "  " + \
            "  ".join(f"{answer['probabilities'][n]:>{w}.4f}" for n, w in zip(names, p_widths))


def format_table(results: list[dict[str, Any]]) -> str:
    """`table_lines` of a list of results, as one string ("" when nothing was predicted)."""
    return "\n".join(table_lines(results, max((len(r["file"]) for r in results), default=0)))
