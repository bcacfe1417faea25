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

Memory follows the work, not the inputs: each header is read first (nothing decoded; an image
over `max_pixels` is refused there), then photos are decoded, detected, predicted and
annotated a `pixel_chunks` chunk (12 megapixels, 16 photos) at a time and their results
yielded before the next chunk is decoded, so a thousand phone photos run in the memory of one.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from hsnet_jax.faces import annotate
from hsnet_jax.runtime import checkpoint
from hsnet_jax.data.reading import (DECODE_ERRORS, MAX_PIXELS, PixelLimitError, check_pixels, header_size, load_rgb,
                                    pixel_chunks, resize_square)
from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.inference.evaluation import Run, check_finite, load_run
from hsnet_jax.inference.metrics import softmax


def _unreadable(path: str, e: BaseException) -> HSNetError:
    hint = "; --max_pixels raises the limit" if isinstance(e, PixelLimitError) else ""
    return HSNetError(f"{path}: cannot read the image ({str(e) or type(e).__name__}{hint})")


def read_photo(path: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """The upright RGB uint8 photo; HSNetError naming the file when it cannot be decoded or
    its header declares more than `max_pixels`."""
    try:
        return load_rgb(path, max_pixels)
    except DECODE_ERRORS as e:
        raise _unreadable(path, e) from None


def chunks(paths: Sequence[str], max_pixels: int, results: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of the readable paths in `pixel_chunks`, from the headers alone; an unreadable
    or too large file gets its error in `results`."""
    readable, pixels = [], []
    for i, path in enumerate(paths):
        try:
            w, h = header_size(path)
            check_pixels((w, h), max_pixels)
        except DECODE_ERRORS as e:
            results[i]["error"] = str(_unreadable(path, e))
            continue
        readable.append(i)
        pixels.append(w * h)
    return [[readable[k] for k in chunk] for chunk in pixel_chunks(pixels)]


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
                  annotate_dir: str | None = None, overwrite: bool = False,
                  max_pixels: int | None = None) -> list[dict[str, Any]]:
    """One result per path, in order (`predict_stream`'s, collected)."""
    return list(predict_stream(workdir, paths, detect_face, which, largest_face, max_side, annotate_dir,
                               overwrite, max_pixels))


def predict_stream(workdir: str, paths: Sequence[str], detect_face: bool = False, which: str = "best",
                   largest_face: bool = False, max_side: int | None = None,
                   annotate_dir: str | None = None, overwrite: bool = False,
                   max_pixels: int | None = None) -> Iterator[dict[str, Any]]:
    """One result per path, in order, yielded a chunk at a time. Without `detect_face`: {"file",
    "prediction", "probabilities" {class: p}}; with it {"file", "faces": [{"box" [x0, y0, x1, y1],
    "prediction", "probabilities"}, ...]} (largest face first), or with `largest_face` the
    largest face's {"file", "box", "prediction", "probabilities"}; for a file that could not be
    used {"file", "error"}. `annotate_dir` receives a labelled copy of each predicted photo (its
    names checked by `annotate.plan` before any work, existing files replaced only with
    `overwrite`). An image declaring more than `max_pixels` (default MAX_PIXELS) is not decoded."""
    max_pixels = max_pixels or MAX_PIXELS
    targets = annotate.plan(annotate_dir, paths, overwrite) if annotate_dir is not None else []
    config = checkpoint.load_run_config(workdir)
    size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
    results: list[dict[str, Any]] = [{"file": path} for path in paths]
    run: Run | None = None
    done = 0
    for chunk in chunks(paths, max_pixels, results):
        photos: dict[int, np.ndarray] = {}
        for i in chunk:
            try:
                photos[i] = read_photo(paths[i], max_pixels)
            except HSNetError as e:
                results[i]["error"] = str(e)
        if detect_face:
            faces = find_faces(paths, photos, size, largest_face, max_side, results)
        else:
            faces = {i: [([0.0, 0.0, float(p.shape[1]), float(p.shape[0])], resize_square(Image.fromarray(p), size))]
                     for i, p in photos.items()}
        if faces:
            run = run or load_run(workdir, which)
            _predict_chunk(run, faces, photos, detect_face, largest_face, results, targets, overwrite,
                           f"checkpoint {which} of {workdir}")
        del photos, faces
        while done <= chunk[-1]:
            yield results[done]
            done += 1
    yield from results[done:]


def _predict_chunk(run: Run, faces: dict[int, list[tuple[list[float], np.ndarray]]], photos: dict[int, np.ndarray],
                   detect_face: bool, largest_face: bool, results: list[dict[str, Any]], targets: list[str],
                   overwrite: bool, what: str) -> None:
    """The answers for one chunk's crops into `results`, each photo annotated when `targets`."""
    probabilities = softmax(run.predict(np.stack([crop for i in faces for _, crop in faces[i]])))
    check_finite(probabilities, what)
    probabilities = iter(probabilities)
    for i, found in faces.items():
        answers = [{"box": box, **_labelled(run.class_names, next(probabilities))} for box, _ in found]
        if not detect_face:
            del answers[0]["box"]
        results[i].update(answers[0] if largest_face or not detect_face else {"faces": answers})
        if targets:
            labels = [(a.get("box", found[0][0]), f"{a['prediction']} {a['probabilities'][a['prediction']]:.2f}")
                      for a in answers]
            annotate.save(annotate.draw(photos[i], labels), targets[i], overwrite)


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
