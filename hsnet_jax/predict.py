"""`python -m hsnet_jax.predict --workdir DIR [--detect_face] [--json] IMAGE...`: the expression
on each photo, with the class probabilities.

Each image goes the way the run's dataset went at preparation and evaluation: decoded to RGB
and brought to the dataset's stored size (PIL bilinear, as `prepare` does; with
`--detect_face` instead the MTCNN face crop of `hsnet_jax.data.faces`, as RaFD and KDEF are
prepared), then through the trainer's evaluation forward path (`preprocess_eval`'s resize to
the model input, `normalize`, the model). An unreadable file or, with `--detect_face`, a
photo without a face gets its own `error:` line; the other images are still predicted and
the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

import numpy as np
from PIL import Image

from hsnet_jax import checkpoint
from hsnet_jax.data.reading import decode
from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.evaluate import load_run

# What PIL raises for a file it cannot decode (as at preparation, hsnet_jax.data.reading).
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def load_image(path: str, size: int, detect_face: bool) -> np.ndarray:
    """The photo as uint8 [size, size, 3]: resized whole, or its largest face (MTCNN).

    Raises HSNetError naming the file when it cannot be decoded or holds no face.
    """
    try:
        if not detect_face:
            return decode(path, size)
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"))
    except DECODE_ERRORS as e:
        raise HSNetError(f"{path}: cannot read the image ({str(e) or type(e).__name__})") from None
    from hsnet_jax.data.faces import crop_face  # torch is loaded only for --detect_face

    face = crop_face(pixels, size)
    if face is None:
        raise HSNetError(f"{path}: no face found")
    return face


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def predict_files(workdir: str, paths: Sequence[str], detect_face: bool = False,
                  which: str = "best") -> list[dict[str, Any]]:
    """One result per path, in order: {"file", "prediction", "probabilities" {class: p}} or,
    for a file that could not be used, {"file", "error"}."""
    config = checkpoint.load_run_config(workdir)
    size = get_builder(config.dataset, config.data_dir or None).IMAGE_SIZE
    results: list[dict[str, Any]] = []
    images = []
    for path in paths:
        try:
            images.append(load_image(path, size, detect_face))
            results.append({"file": path})
        except HSNetError as e:
            results.append({"file": path, "error": str(e)})
    if not images:
        return results
    run = load_run(workdir, which)
    probabilities = iter(softmax(run.predict(np.stack(images))))
    for result in results:
        if "error" not in result:
            p = next(probabilities)
            result["prediction"] = run.class_names[int(np.argmax(p))]
            result["probabilities"] = {name: float(q) for name, q in zip(run.class_names, p)}
    return results


def format_table(results: list[dict[str, Any]]) -> str:
    """One row per predicted image: file, predicted expression, then each class's probability."""
    done = [r for r in results if "error" not in r]
    if not done:
        return ""
    names = list(done[0]["probabilities"])
    file_width = max(len("image"), *(len(r["file"]) for r in done))
    pred_width = max(len("prediction"), *(len(n) for n in names))
    widths = [max(len(n), 6) for n in names]
    lines = [f"{'image':<{file_width}}  {'prediction':<{pred_width}}  "
             + "  ".join(f"{n:>{w}}" for n, w in zip(names, widths))]
    for r in done:
        lines.append(f"{r['file']:<{file_width}}  {r['prediction']:<{pred_width}}  "
                     + "  ".join(f"{r['probabilities'][n]:>{w}.4f}" for n, w in zip(names, widths)))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--workdir", required=True, help="the run directory of hsnet_jax.train")
    parser.add_argument("--detect_face", action="store_true",
                        help="crop the largest face with MTCNN first (needs torch + facenet-pytorch)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--which", default="best", choices=checkpoint.WHICH, help="checkpoint (default best)")
    args = parser.parse_args(argv)
    try:
        results = predict_files(args.workdir, args.images, args.detect_face, args.which)
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
    sys.exit(main())
