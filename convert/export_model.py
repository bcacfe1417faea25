r"""A trained run as a deployable directory: ONNX (HSNet and MTCNN), jax.export, a model card.

  python convert/export_model.py --workdir WORKDIR --output DIR [--which best] [--int8] [--overwrite]

writes into DIR (refused when DIR exists and is not empty, unless --overwrite):
  hsnet.onnx        uint8 face crops [N, S, S, 3] (S: the dataset's stored size) -> outputs
                    `probabilities` and `logits` [N, classes]; the evaluation preprocessing
                    inside the graph (convert/onnx_hsnet.py, by torch.onnx)
  hsnet.int8.onnx   with --int8: ONNX Runtime's dynamic int8 quantisation of it, its test
                    accuracy beside the float model's in model.json
  mtcnn_pnet.onnx, mtcnn_rnet.onnx, mtcnn_onet.onnx   the face detector (convert/mtcnn_onnx.py)
  hsnet.jaxexport   `jax.export` of the same function (uint8 crops -> (probabilities, logits)),
                    batch-polymorphic, lowered for cpu, cuda and tpu; needs only jax to run:
                    `jax.export.deserialize(open(path, "rb").read()).call(images)`
  model.json        the model card (`hsnet_jax.inference.deployment.FORMAT_VERSION`): class names in output
                    order, sizes, the run's config, test metrics (and seeds.json's mean and std),
                    the data fingerprint when the dataset has one, versions, SHA-256 of every file

`python -m hsnet_jax.deploy DIR photo.jpg ...` predicts from DIR with ONNX Runtime alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from importlib import metadata
from typing import Any

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from convert import mtcnn_onnx, onnx_hsnet  # noqa: E402
from hsnet_jax.runtime import checkpoint  # noqa: E402
from hsnet_jax.data.augment import preprocess_eval  # noqa: E402
from hsnet_jax.data.registry import get_builder  # noqa: E402
from hsnet_jax.inference.deployment import FILES, FORMAT_VERSION, INT8_FILE, MODEL_CARD, sha256  # noqa: E402
from hsnet_jax.errors import HSNetError  # noqa: E402
from hsnet_jax.faces import crop_rule, mtcnn_procedure  # noqa: E402
from hsnet_jax.models import create_model  # noqa: E402

PLATFORMS = ("cpu", "cuda", "tpu")
JAX_FILE = "hsnet.jaxexport"
PACKAGES = ("hsnet-jax", "jax", "jaxlib", "flax", "numpy", "torch", "onnx", "onnxscript", "onnxruntime", "pillow")


def export_jax(model, variables: dict, stored_size: int, image_size: int, path: str) -> None:
    """`jax.export` of uint8 [b, S, S, 3] -> (probabilities, logits), weights as constants."""

    def deployed(images):
        logits = model.apply(variables, preprocess_eval(images, image_size), train=False)
        return jax.nn.softmax(logits, axis=-1), logits

    batch = jax.export.symbolic_shape(f"b, {stored_size}, {stored_size}, 3")
    exported = jax.export.export(jax.jit(deployed), platforms=PLATFORMS)(jax.ShapeDtypeStruct(batch, np.uint8))
    with open(path, "wb") as f:
        f.write(exported.serialize())


def _json_or_none(path: str) -> Any:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_record(workdir: str, which: str, config, meta: dict) -> dict:
    """The run's side of the card: config, checkpoint, test metrics, seeds.json's spread."""
    report = _json_or_none(os.path.join(workdir, "eval", "test_metrics.json" if which == "best"
                                        else "test_latest_metrics.json"))
    seeds = _json_or_none(os.path.join(workdir, "seeds.json")) or \
        _json_or_none(os.path.join(os.path.dirname(os.path.abspath(workdir)), "seeds.json"))
    record = dict(workdir=os.path.abspath(workdir), checkpoint=which, epoch=meta.get("epoch"),
                  dataset=config.dataset, config=json.loads(config.to_json()))
    if report:
        record["test_metrics"] = {k: report[k] for k in ("accuracy", "mean_accuracy", "per_class", "num_examples")
                                  if k in report}
    if seeds:
        record["seeds"] = {k: seeds[k] for k in ("accuracy", "mean_accuracy") if k in seeds}
    return record


def data_fingerprint(builder) -> str | None:
    """The prepared dataset's fingerprint when its metadata has one (else None)."""
    try:
        return builder.info.metadata.get("fingerprint")
    except Exception:  # not prepared here: no metadata to read
        return None


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


def int8_record(output: str, config, data_dir: str | None) -> dict:
    """Accuracy of hsnet.onnx and hsnet.int8.onnx on the run's test split, and their agreement."""
    import onnxruntime as ort

    from hsnet_jax.data import load_split

    split = load_split(config.dataset, "test", data_dir)
    predictions = {}
    for name in (FILES[0], INT8_FILE):
        session = ort.InferenceSession(os.path.join(output, name), providers=["CPUExecutionProvider"])
        probabilities = np.concatenate([session.run(["probabilities"], {"images": split.images[i:i + 64]})[0]
                                        for i in range(0, len(split.images), 64)])
        predictions[name] = np.argmax(probabilities, axis=-1)
    accuracy = {name: float(np.mean(p == split.labels)) for name, p in predictions.items()}
    return dict(file=INT8_FILE, quantisation="onnxruntime.quantization.quantize_dynamic, QInt8 weights",
                test_examples=len(split.labels), test_accuracy=accuracy[INT8_FILE],
                float_test_accuracy=accuracy[FILES[0]],
                agreement=float(np.mean(predictions[FILES[0]] == predictions[INT8_FILE])))


def export(workdir: str, output: str, which: str = "best", int8: bool = False, overwrite: bool = False) -> dict:
    """Writes the directory described above; returns the model card."""
    if os.path.isdir(output) and os.listdir(output) and not overwrite:
        raise HSNetError(f"{output}: exists and is not empty (pass --overwrite to replace its files)")
    config = checkpoint.load_run_config(workdir)
    meta = checkpoint.read_meta(workdir, which)
    class_names = list(meta["class_names"])
    model = create_model(config, len(class_names))
    architecture = dict(use_dib=bool(model.use_dib), use_fgal=bool(model.use_fgal),
                        fgal_standardize=bool(model.fgal_standardize))
    variables = checkpoint.restore_variables(workdir, which, expected=dict(num_classes=len(class_names),
                                                                          **architecture))
    variables = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    data_dir = config.data_dir or None
    builder = get_builder(config.dataset, data_dir)
    stored, image_size = int(builder.IMAGE_SIZE), int(config.image_size)
    os.makedirs(output, exist_ok=True)
    for name in os.listdir(output):  # --overwrite: nothing of an older export stays behind
        if name in (*FILES, INT8_FILE, JAX_FILE, MODEL_CARD):
            os.remove(os.path.join(output, name))
    onnx_hsnet.export_onnx(variables, architecture, len(class_names), stored, image_size,
                           os.path.join(output, FILES[0]))
    mtcnn_onnx.write_all(output)
    export_jax(model, variables, stored, image_size, os.path.join(output, JAX_FILE))
    card: dict[str, Any] = dict(
        format_version=FORMAT_VERSION, class_names=class_names,
        input=dict(stored_size=stored, model_input_size=image_size, dtype="uint8", layout="NHWC RGB",
                   shape=["N", stored, stored, 3]),
        outputs=dict(probabilities="float32 [N, classes], softmax of the logits", logits="float32 [N, classes]"),
        preprocessing="inside the graphs: hsnet_jax.data.augment.preprocess_eval (resize to the model "
                      "input: antialiased bilinear when shrinking, half-pixel bilinear otherwise), "
                      "then (pixels - 127.5) / 128",
        architecture=architecture,
        faces=dict(detector="MTCNN (facenet-pytorch's weights and procedure)",
                   min_face_size=mtcnn_procedure.MIN_FACE_SIZE, thresholds=list(mtcnn_procedure.THRESHOLDS),
                   factor=mtcnn_procedure.FACTOR, crop_margin=crop_rule.MARGIN),
        jax_export=dict(file=JAX_FILE, platforms=list(PLATFORMS), batch="polymorphic (b)"),
        run=run_record(workdir, which, config, meta), versions=versions(),
        exported=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    fingerprint = data_fingerprint(builder)
    if fingerprint:
        card["data_fingerprint"] = fingerprint
    if int8:
        onnx_hsnet.quantize_int8(os.path.join(output, FILES[0]), os.path.join(output, INT8_FILE))
        card["int8"] = int8_record(output, config, data_dir)
    card["files"] = {name: sha256(os.path.join(output, name)) for name in sorted(os.listdir(output))}
    with open(os.path.join(output, MODEL_CARD), "w") as f:
        json.dump(card, f, indent=2)
    return card


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="the run directory of hsnet_jax.train")
    parser.add_argument("--output", required=True, help="the directory to write")
    parser.add_argument("--which", default="best", choices=checkpoint.WHICH, help="checkpoint (default best)")
    parser.add_argument("--int8", action="store_true",
                        help="also hsnet.int8.onnx, with its accuracy on the run's test split")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of an existing export")
    args = parser.parse_args(argv)
    try:
        card = export(args.workdir, args.output, args.which, args.int8, args.overwrite)
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: " + ", ".join(card["files"]) + f" and {MODEL_CARD}")
    if "int8" in card:
        print(f"test accuracy: float {100 * card['int8']['float_test_accuracy']:.2f}%, "
              f"int8 {100 * card['int8']['test_accuracy']:.2f}% "
              f"(agreement {100 * card['int8']['agreement']:.2f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
