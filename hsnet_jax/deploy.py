"""`python -m hsnet_jax.deploy DIR IMAGE... [--json]`: the expressions of every face in photos,
from a directory `convert/export_model.py` wrote, with ONNX Runtime alone (no jax, no torch).

It imports numpy, Pillow and onnxruntime and, of this package, only the jax-free face modules:
MTCNN's procedure (`hsnet_jax.faces.mtcnn_procedure`, handed the three ONNX sessions), the
crop rule, the photo decoder and the answers (`hsnet_jax.faces.answers`), the very code
`predict --detect_face` runs, so it prints what `python -m hsnet_jax.predict --detect_face
--workdir RUN` prints (the same faces and boxes; probabilities from the same logits to ONNX
Runtime's float rounding, tests/test_deploy.py). The directory is checked first: model.json's
format, every file present and its SHA-256 as model.json records it.
"""

from __future__ import annotations

import argparse
import json
import sys

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces import answers
from hsnet_jax.faces.mtcnn_procedure import MIN_FACE_SIZE
from hsnet_jax.inference.deployment import Deployment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", metavar="DIR", help="an export of convert/export_model.py")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--largest_face", action="store_true", help="only the largest face, one answer per file")
    parser.add_argument("--max_side", type=int, default=None, metavar="PIXELS",
                        help="detect on the photo shrunk to this longer side (default: full resolution)")
    parser.add_argument("--int8", action="store_true", help="run hsnet.int8.onnx (exported with --int8)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        if args.max_side is not None and args.max_side < MIN_FACE_SIZE:
            raise HSNetError(f"--max_side {args.max_side}: must be at least {MIN_FACE_SIZE} (MTCNN's smallest face)")
        results = Deployment(args.directory, args.int8).predict_files(args.images, args.largest_face, args.max_side)
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
    sys.exit(main())
