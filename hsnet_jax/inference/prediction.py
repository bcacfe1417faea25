"""The expression on photos, or on every face MTCNN finds in them (what
`python -m hsnet_jax.predict` runs).

Each image is decoded by `hsnet_jax.data.reading.to_rgb` (EXIF orientation, transparency on
white, 16-bit greyscale) and goes the way the run's dataset went at preparation and
evaluation: brought to the dataset's stored size (PIL bilinear, as `prepare` does) or, with
`--detect_face`, every face MTCNN finds (`hsnet_jax.faces.detect`, JAX, at full resolution unless
`--max_side`) cropped as RaFD and KDEF are prepared; then the trainer's evaluation forward path
(`preprocess_eval`'s resize to the model input, `normalize`, the model). An unreadable file
or, with `--detect_face`, a photo without a face or too small for detection gets its own
`error:` line; the other images are still predicted and the exit status is 1.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image

from hsnet_jax.faces import annotate
from hsnet_jax.runtime import checkpoint
from hsnet_jax.data.reading import DECODE_ERRORS, load_rgb, resize_square
from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.inference.evaluation import check_finite, load_run
from hsnet_jax.inference.metrics import softmax


def read_photo(path: str) -> np.ndarray:
    """The upright RGB uint8 photo; HSNetError naming the file when it cannot be decoded."""
    try:
        return load_rgb(path)
    except DECODE_ERRORS as e:
        raise HSNetError(f"{path}: cannot read the image ({str(e) or type(e).__name__})") from None


def find_faces(paths: Sequence[str], photos: dict[int, np.ndarray], size: int, largest_face: bool,
               max_side: int | None, results: list[dict[str, Any]]) -> dict[int, list[tuple[list[float], np.ndarray]]]:
    """(box, face crop) per face (largest first; only the largest with `largest_face`) of each
    photo; a photo too small for detection or without a face gets an error in `results`."""
    from hsnet_jax.faces.crops import MIN_FACE_SIZE, crop_box, detect_faces, too_small

    for i in [i for i, photo in photos.items() if too_small(photo)]:
        h, w = photos.pop(i).shape[:2]
        results[i]["error"] = (f"{paths[i]}: {w}x{h} pixels is too small for face detection (MTCNN needs "
                               f"at least {MIN_FACE_SIZE} on each side)")
    order = list(photos)
    found = detect_faces([photos[i] for i in order], max_side)
    faces = {}
    for i, f in zip(order, found):
        if not len(f):
            results[i]["error"] = f"{paths[i]}: no face found"
            continue
        boxes = f.boxes[:1] if largest_face else f.boxes
        faces[i] = [([round(float(v), 2) for v in box], crop_box(photos[i], box, size)) for box in boxes]
    return faces


def _labelled(class_names: Sequence[str], p: np.ndarray) -> dict[str, Any]:
    return {"prediction": class_names[int(np.argmax(p))],
            "probabilities": {name: float(q) for name, q in zip(class_names, p)}}


def predict_files(workdir: str, paths: Sequence[str], detect_face: bool = False, which: str = "best",
                  largest_face: bool = False, max_side: int | None = None,
                  annotate_dir: str | None = None, overwrite: bool = False) -> list[dict[str, Any]]:
    """One result per path, in order. Without `detect_face`: {"file", "prediction",
    "probabilities" {class: p}}; with it {"file", "faces": [{"box" [x0, y0, x1, y1],
    "prediction", "probabilities"}, ...]} (largest face first), or with `largest_face` the
    largest face's {"file", "box", "prediction", "probabilities"}; for a file that could not be
    used {"file", "error"}. `annotate_dir` receives a labelled copy of each predicted photo (its
names checked by `annotate.plan` before any work, existing files replaced only with `overwrite`)."""
    targets = annotate.plan(annotate_dir, paths, overwrite) if annotate_dir is not None else []
    config = checkpoint.load_run_config(workdir)
    size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
    results: list[dict[str, Any]] = [{"file": path} for path in paths]
    photos: dict[int, np.ndarray] = {}
    for i, path in enumerate(paths):
        try:
            photos[i] = read_photo(path)
        except HSNetError as e:
            results[i]["error"] = str(e)
    if detect_face:
        faces = find_faces(paths, photos, size, largest_face, max_side, results)
    else:
        faces = {i: [([0.0, 0.0, float(p.shape[1]), float(p.shape[0])], resize_square(Image.fromarray(p), size))]
                 for i, p in photos.items()}
    if not faces:
        return results
    run = load_run(workdir, which)
    probabilities = softmax(run.predict(np.stack([crop for i in faces for _, crop in faces[i]])))
    check_finite(probabilities, f"checkpoint {which} of {workdir}")
    probabilities = iter(probabilities)
    for i, found in faces.items():
        answers = [{"box": box, **_labelled(run.class_names, next(probabilities))} for box, _ in found]
        if not detect_face:
            del answers[0]["box"]
        results[i].update(answers[0] if largest_face or not detect_face else {"faces": answers})
        if annotate_dir is not None:
            labels = [(a.get("box", found[0][0]), f"{a['prediction']} {a['probabilities'][a['prediction']]:.2f}")
                      for a in answers]
            annotate.save(annotate.draw(photos[i], labels), targets[i], overwrite)
    return results


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


def format_table(results: list[dict[str, Any]]) -> str:
    """One row per predicted face (or image without --detect_face): file, [face number, box
    x0,y0,x1,y1,] predicted expression, then each class's probability."""
    rows = _rows(results)
    if not rows:
        return ""
    names = list(rows[0][3]["probabilities"])
    with_box = any(box for _, _, box, _ in rows)
    columns = [("image", [r[0] for r in rows])]
    if with_box:
        columns += [("face", [r[1] for r in rows]), ("box", [r[2] for r in rows])]
    columns += [("prediction", [r[3]["prediction"] for r in rows])]
    widths = [max(len(title), *(len(v) for v in values)) for title, values in columns]
    p_widths = [max(len(n), 6) for n in names]
    lines = ["  ".join(f"{title:<{w}}" for (title, _), w in zip(columns, widths)) + "  "
             + "  ".join(f"{n:>{w}}" for n, w in zip(names, p_widths))]
    for k, row in enumerate(rows):
        lines.append("  ".join(f"{values[k]:<{w}}" for (_, values), w in zip(columns, widths)) + "  "
                     + "  ".join(f"{row[3]['probabilities'][n]:>{w}.4f}" for n, w in zip(names, p_widths)))
    return "\n".join(lines)
