"""`python -m hsnet_jax.predict --workdir DIR [--detect_face] [--json] [--annotate OUT] IMAGE...`:
the expression on each photo (each face of it with `--detect_face`), with the class
probabilities.

Each image is decoded by `hsnet_jax.faces.photo.to_rgb` (EXIF orientation, transparency on
white, 16-bit greyscale) and goes the way the run's dataset went at preparation and
evaluation: brought to the dataset's stored size (PIL bilinear, as `prepare` does) or, with
`--detect_face`, every face MTCNN finds (`hsnet_jax.detect`, JAX, at full resolution unless
`--max_side`) cropped as RaFD and KDEF are prepared; then the trainer's evaluation forward path
(`preprocess_eval`'s resize to the model input, `normalize`, the model). An unreadable file
or, with `--detect_face`, a photo without a face or too small for detection gets its own
`error:` line (reading, detection, crops and answers: `hsnet_jax.faces.answers`, which
`hsnet_jax.deploy` shares); the other images are still predicted and the exit status is 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

import numpy as np
from PIL import Image

from hsnet_jax import annotate, checkpoint, cli
from hsnet_jax.data.reading import resize_square
from hsnet_jax.data.registry import get_builder
from hsnet_jax.errors import HSNetError
from hsnet_jax.evaluate import load_run
from hsnet_jax.faces import answers


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
        from hsnet_jax.data.faces import detect_faces

        faces = answers.find_faces(paths, photos, size, largest_face, max_side, results, detect_faces)
    else:
        faces = {i: [([0.0, 0.0, float(p.shape[1]), float(p.shape[0])], resize_square(Image.fromarray(p), size))]
                 for i, p in photos.items()}
    if not faces:
        return results
    run = load_run(workdir, which)
    logits = run.predict(np.stack([crop for i in faces for _, crop in faces[i]]))
    labelled = answers.answer(results, faces, logits, run.class_names, detect_face, largest_face)
    taken: set[str] = set()
    for i, found in faces.items() if annotate_dir is not None else ():
        labels = [(a.get("box", found[0][0]), f"{a['prediction']} {a['probabilities'][a['prediction']]:.2f}")
                  for a in labelled[i]]
        annotate.save(annotate.draw(photos[i], labels), annotate.output_path(annotate_dir, paths[i], taken))
    return results


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
    output = json.dumps(results, indent=2) if args.json else answers.format_table(results)
    if output:
        print(output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(cli.run(main))
