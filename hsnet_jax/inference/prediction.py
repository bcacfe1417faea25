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
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from PIL import Image

from hsnet_jax.faces import annotate, answers
from hsnet_jax.runtime import checkpoint
from hsnet_jax.data.reading import resize_square
from hsnet_jax.data.registry import get_builder
from hsnet_jax.inference.evaluation import Run, load_run
from hsnet_jax.inference.metrics import softmax


def classify_faces(run: Run, faces: answers.FaceCrops) -> dict[int, list[dict[str, Any]]]:
    """{"box", "prediction", "probabilities"} per face of `answers.find_faces`' crops, every face
    of every photo in one forward pass (the demo server batches many requests' faces this way)."""
    logits = run.predict(np.stack([crop for i in faces for _, crop in faces[i]]))
    return answers.labelled_faces(faces, softmax(logits), run.class_names)


def predict_files(workdir: str, paths: Sequence[str], detect_face: bool = False, which: str = "best",
                  largest_face: bool = False, max_side: int | None = None,
                  annotate_dir: str | None = None) -> list[dict[str, Any]]:
    """One result per path, in order. Without `detect_face`: {"file", "prediction",
    "probabilities" {class: p}}; with it {"file", "faces": [{"box" [x0, y0, x1, y1],
    "prediction", "probabilities"}, ...]} (largest face first), or with `largest_face` the
    largest face's {"file", "box", "prediction", "probabilities"}; for a file that could not be
    used {"file", "error"}. `annotate_dir` receives a labelled copy of each predicted photo."""
    config = checkpoint.load_run_config(workdir)
    size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
    results: list[dict[str, Any]] = [{"file": path} for path in paths]
    photos = answers.read_photos(paths, results)
    if detect_face:
        from hsnet_jax.faces.crops import detect_faces

        faces = answers.find_faces(paths, photos, size, largest_face, max_side, results, detect_faces)
    else:
        faces = {i: [([0.0, 0.0, float(p.shape[1]), float(p.shape[0])], resize_square(Image.fromarray(p), size))]
                 for i, p in photos.items()}
    if not faces:
        return results
    run = load_run(workdir, which)
    logits = run.predict(np.stack([crop for i in faces for _, crop in faces[i]]))
    labelled = answers.answer(results, faces, softmax(logits), run.class_names, detect_face, largest_face)
    taken: set[str] = set()
    for i, found in faces.items() if annotate_dir is not None else ():
        labels = [(a.get("box", found[0][0]), f"{a['prediction']} {a['probabilities'][a['prediction']]:.2f}")
                  for a in labelled[i]]
        annotate.save(annotate.draw(photos[i], labels), annotate.output_path(annotate_dir, paths[i], taken))
    return results
