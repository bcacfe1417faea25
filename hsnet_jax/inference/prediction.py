"""The expression on photos, or on every face MTCNN finds in them (what
`python -m hsnet_jax.predict` runs).

Each image is decoded by `hsnet_jax.faces.photo.to_rgb` (EXIF orientation, transparency on
white, 16-bit greyscale) and goes the way the run's dataset went at preparation and
evaluation: brought to the dataset's stored size (PIL bilinear, as `prepare` does) or, with
`--detect_face`, every face MTCNN finds (`hsnet_jax.faces.detect`, JAX, at full resolution unless
`--max_side`) cropped as RaFD and KDEF are prepared; then the trainer's evaluation forward path
(`preprocess_eval`'s resize to the model input, `normalize`, the model). An unreadable file
or, with `--detect_face`, a photo without a face or too small for detection gets its own
`error:` line (reading, detection, crops and answers: `hsnet_jax.faces.answers`, which
`hsnet_jax.deploy` shares); the other images are still predicted and the exit status is 1.

Memory follows the work, not the inputs: each header is read first (nothing decoded; an image
over `max_pixels` is refused there), then photos are decoded, detected, predicted and
annotated a `pixel_chunks` chunk (12 megapixels, 16 photos) at a time and their results
yielded before the next chunk is decoded, so a thousand phone photos run in the memory of one.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from hsnet_jax.data.reading import pixel_chunks, resize_square
from hsnet_jax.data.registry import get_builder
from hsnet_jax.faces import annotate, answers
from hsnet_jax.faces.photo import DECODE_ERRORS, MAX_PIXELS, check_pixels, header_size, unreadable
from hsnet_jax.inference.evaluation import Run, load_run
from hsnet_jax.inference.metrics import check_finite, softmax
from hsnet_jax.runtime import checkpoint


def chunks(paths: Sequence[str], max_pixels: int, results: list[dict[str, Any]]) -> list[list[int]]:
    """Indices of the readable paths in `pixel_chunks`, from the headers alone; an unreadable
    or too large file gets its error in `results`."""
    readable, pixels = [], []
    for i, path in enumerate(paths):
        try:
            w, h = header_size(path)
            check_pixels((w, h), max_pixels)
        except DECODE_ERRORS as e:
            results[i]["error"] = unreadable(path, e)
            continue
        readable.append(i)
        pixels.append(w * h)
    return [[readable[k] for k in chunk] for chunk in pixel_chunks(pixels)]


def _probabilities(run: Run, faces: answers.FaceCrops, what: str) -> np.ndarray:
    """Every crop's class probabilities in one forward pass; an error for a non-finite answer."""
    probabilities = softmax(run.predict(answers.stacked(faces)))
    check_finite(probabilities, what)
    return probabilities


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
        photos = answers.read_photos(paths, results, max_pixels, chunk)
        if detect_face:
            from hsnet_jax.faces.crops import detect_faces

            faces = answers.find_faces(paths, photos, size, largest_face, max_side, results, detect_faces)
        else:
            faces = {i: [([0.0, 0.0, float(p.shape[1]), float(p.shape[0])], resize_square(Image.fromarray(p), size))]
                     for i, p in photos.items()}
        if faces:
            run = run or load_run(workdir, which)
            probabilities = _probabilities(run, faces, f"checkpoint {which} of {workdir}")
            labelled = answers.answer(results, faces, probabilities, run.class_names, detect_face, largest_face)
            for i, found in faces.items() if targets else ():
                labels = [(a.get("box", found[0][0]), f"{a['prediction']} {a['probabilities'][a['prediction']]:.2f}")
                          for a in labelled[i]]
                annotate.save(annotate.draw(photos[i], labels), targets[i], overwrite)
        del photos, faces
        while done <= chunk[-1]:
            yield results[done]
            done += 1
    yield from results[done:]
