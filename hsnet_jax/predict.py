"""`python -m hsnet_jax.predict --workdir DIR [--detect_face] [--json] [--annotate OUT] IMAGE...`:
the expression on each photo (each face of it with `--detect_face`), with the class
probabilities.

Each image is decoded by `hsnet_jax.data.reading.to_rgb` (EXIF orientation, transparency on
white, 16-bit greyscale) and goes the way the run's dataset went at preparation and
evaluation: brought to the dataset's stored size (PIL bilinear, as `prepare` does) or, with
`--detect_face`, every face MTCNN finds (`hsnet_jax.detect`, JAX, at full resolution unless
`--max_side`) cropped as RaFD and KDEF are prepared; then the trainer's evaluation forward path
(`preprocess_eval`'s resize to the model input, `normalize`, the model). An unreadable file
or, with `--detect_face`, a photo without a face or too small for detection gets its own
`error:` line; the other images are still predicted and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, BinaryIO, Sequence

import numpy as np
from PIL import Image

from hsnet_jax import annotate, checkpoint, cli
from hsnet_jax.data.reading import DECODE_ERRORS, resize_square, to_rgb
from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.evaluate import Run, load_run
from hsnet_jax.metrics import softmax


def read_photo(path: str | BinaryIO, name: str | None = None) -> np.ndarray:
    """The upright RGB uint8 photo from a file path or a file object (an upload, named `name`);
    HSNetError naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            return np.asarray(to_rgb(image))
    except DECODE_ERRORS as e:
        raise HSNetError(f"{name or path}: cannot read the image ({str(e) or type(e).__name__})") from None


def find_faces(paths: Sequence[str], photos: dict[int, np.ndarray], size: int, largest_face: bool,
               max_side: int | None, results: list[dict[str, Any]]) -> dict[int, list[tuple[list[float], np.ndarray]]]:
    """(box, face crop) per face (largest first; only the largest with `largest_face`) of each
    photo; a photo too small for detection or without a face gets an error in `results`."""
    from hsnet_jax.data.faces import MIN_FACE_SIZE, crop_box, detect_faces, too_small

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


def classify_faces(run: Run, faces: dict[int, list[tuple[list[float], np.ndarray]]]) -> dict[int, list[dict[str, Any]]]:
    """{"box", "prediction", "probabilities"} per face of `find_faces`' answer, every face of
    every photo in one forward pass (the server batches many requests' faces this way)."""
    probabilities = iter(softmax(run.predict(np.stack([crop for i in faces for _, crop in faces[i]]))))
    return {i: [{"box": box, **_labelled(run.class_names, next(probabilities))} for box, _ in found]
            for i, found in faces.items()}


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
    answered = classify_faces(load_run(workdir, which), faces)
    taken: set[str] = set()
    for i, found in faces.items():
        answers = answered[i]
        if not detect_face:
            del answers[0]["box"]
        results[i].update(answers[0] if largest_face or not detect_face else {"faces": answers})
        if annotate_dir is not None:
            labels = [(a.get("box", found[0][0]), f"{a['prediction']} {a['probabilities'][a['prediction']]:.2f}")
                      for a in answers]
            annotate.save(annotate.draw(photos[i], labels), annotate.output_path(annotate_dir, paths[i], taken))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--workdir", required=True, help="the run directory of hsnet_jax.train")
    parser.add_argument("--detect_face", action="store_true",
                        help="predict every face MTCNN finds (largest first) instead of the whole picture")
    parser.add_argument("--largest_face", action="store_true",
                        help="with --detect_face: only the largest face, one answer per file")
    parser.add_argument("--max_side", type=int, default=None, metavar="PIXELS",
                        help="with --detect_face: detect on the photo shrunk to this longer side "
                             "(faster; default: full resolution, finds the smallest faces)")
    parser.add_argument("--annotate", metavar="DIR",
                        help="write a copy of each photo with every face boxed and labelled into DIR")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--which", default="best", choices=checkpoint.WHICH, help="checkpoint (default best)")
    args = parser.parse_args(argv)
    try:
        if (args.largest_face or args.max_side) and not args.detect_face:
            raise HSNetError("--largest_face and --max_side need --detect_face")
        if args.max_side is not None and args.max_side < 20:
            raise HSNetError(f"--max_side {args.max_side}: must be at least 20 (MTCNN's smallest face)")
        results = predict_files(args.workdir, args.images, args.detect_face, args.which, args.largest_face,
                                args.max_side, args.annotate)
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    failed = [r for r in results if "error" in r]
    for r in failed:
        print(f"error: {r['error']}", file=sys.stderr)
    output = json.dumps(results, indent=2) if args.json else format_table(results)
    if output:
        print(output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
