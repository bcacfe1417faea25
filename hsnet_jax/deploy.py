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
import hashlib
import json
import os
import sys
from typing import Any, Sequence

import numpy as np
import onnxruntime

from hsnet_jax.errors import HSNetError
from hsnet_jax.faces import answers
from hsnet_jax.faces.mtcnn_procedure import MIN_FACE_SIZE, Networks, Procedure
from hsnet_jax.inference.metrics import softmax  # numpy only

FORMAT_VERSION = 1  # of model.json; a newer one is refused
MODEL_CARD = "model.json"
FILES = ("hsnet.onnx", "mtcnn_pnet.onnx", "mtcnn_rnet.onnx", "mtcnn_onet.onnx")  # what deploy runs
INT8_FILE = "hsnet.int8.onnx"
BATCH = 32  # face crops per run of the expression network


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_card(directory: str, int8: bool = False) -> dict[str, Any]:
    """model.json of an export, after checking it and the files deploy needs (HSNetError, one
    line naming what is wrong)."""
    path = os.path.join(directory, MODEL_CARD)
    if not os.path.isdir(directory):
        raise HSNetError(f"{directory}: not a directory")
    if not os.path.isfile(path):
        raise HSNetError(f"{directory}: not an hsnet export (no {MODEL_CARD}; write one with convert/export_model.py)")
    try:
        with open(path) as f:
            card = json.load(f)
        version, files = card["format_version"], card["files"]
    except (ValueError, KeyError, TypeError) as e:
        raise HSNetError(f"{path}: not a model card ({type(e).__name__}: {e})") from None
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise HSNetError(f"{path}: format {version} is newer than this hsnet_jax.deploy reads "
                         f"({FORMAT_VERSION}); update hsnet-jax")
    needed = FILES[1:] + ((INT8_FILE,) if int8 else FILES[:1])
    for name in needed:
        if not os.path.isfile(os.path.join(directory, name)):
            raise HSNetError(f"{directory}: {name} is missing")
        if name not in files:
            raise HSNetError(f"{path}: no SHA-256 recorded for {name}")
        if sha256(os.path.join(directory, name)) != files[name]:
            raise HSNetError(f"{os.path.join(directory, name)}: SHA-256 differs from {MODEL_CARD}'s "
                             "(the file was changed or damaged)")
    return card


class Deployment:
    """An export loaded into ONNX Runtime: `detect(photos, max_side)` and `logits(crops)`."""

    def __init__(self, directory: str, int8: bool = False, providers: Sequence[str] = ("CPUExecutionProvider",)):
        self.card = read_card(directory, int8)
        self.class_names = tuple(self.card["class_names"])
        self.stored_size = int(self.card["input"]["stored_size"])

        def session(name: str) -> onnxruntime.InferenceSession:
            return onnxruntime.InferenceSession(os.path.join(directory, name), providers=list(providers))

        self.hsnet = session(INT8_FILE if int8 else FILES[0])
        nets = {net: session(f"mtcnn_{net}.onnx") for net in ("pnet", "rnet", "onet")}
        self.detector = Procedure(Networks(*(lambda x, s=nets[net]: s.run(None, {"input": x})
                                             for net in ("pnet", "rnet", "onet"))))

    def logits(self, crops: np.ndarray) -> np.ndarray:
        """uint8 face crops [N, S, S, 3] (S: the stored size) -> float32 logits [N, classes]."""
        return np.concatenate([self.hsnet.run(["logits"], {"images": crops[i:i + BATCH]})[0]
                               for i in range(0, len(crops), BATCH)])

    def predict_files(self, paths: Sequence[str], largest_face: bool = False,
                      max_side: int | None = None) -> list[dict[str, Any]]:
        """`hsnet_jax.inference.prediction.predict_files(..., detect_face=True)`'s results, from this export."""
        results: list[dict[str, Any]] = [{"file": path} for path in paths]
        photos = answers.read_photos(paths, results)
        faces = answers.find_faces(paths, photos, self.stored_size, largest_face, max_side, results,
                                   self.detector.detect)
        if faces:
            logits = self.logits(np.stack([crop for i in faces for _, crop in faces[i]]))
            answers.answer(results, faces, softmax(logits), self.class_names, True, largest_face)
        return results


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
