r"""A trained run as a PyTorch model: the bridge to PyTorch evaluation scripts, other FER models
and ONNX export.

  python convert/export_torch.py --workdir WORKDIR [--which best] --output hsnet.pt

writes two files:
  hsnet.pt    a plain state dict of `convert.torch_hsnet.HSNet` (torch.load(..., weights_only=True))
  hsnet.json  the sidecar: class names, the architecture switches the HSNet is built with,
              and the preprocessing its input needs (image size, resize, normalisation)

and, run from the repository root, `from convert.torch_hsnet import load_exported;
model = load_exported("hsnet.pt")` gives the model in eval mode. Its logits equal the JAX
model's to float rounding (tests/test_export_torch.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):  # run as a script: the repository root on the path
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from convert.torch_hsnet import HSNet, from_flax, sidecar_path  # noqa: E402
from hsnet_jax.runtime import checkpoint  # noqa: E402
from hsnet_jax.errors import HSNetError  # noqa: E402

PREPROCESSING = {
    "layout": "NCHW, RGB, float32",
    "resize": "bilinear to image_size x image_size, half-pixel centres, antialiased when shrinking "
              "(hsnet_jax.data.preprocess_eval; torchvision: Resize((image_size, image_size), antialias=True))",
    "normalize": "(pixels - 127.5) / 128 on 0-255 pixels (hsnet_jax.models.normalize)",
}


def export(workdir: str, output: str, which: str = "best") -> dict:
    """Writes OUTPUT (state dict) and its JSON sidecar for checkpoint `which` of the run in
    `workdir`; returns the sidecar's content."""
    config = checkpoint.load_run_config(workdir)
    meta = checkpoint.read_meta(workdir, which)
    architecture = dict(use_dib=bool(config.model.use_dib), use_fgal=bool(config.model.use_fgal),
                        fgal_standardize=bool(config.model.get("fgal_standardize", True)))
    class_names = list(meta["class_names"])
    variables = checkpoint.restore_variables(workdir, which, expected=dict(num_classes=len(class_names),
                                                                          **architecture))
    model = HSNet(len(class_names), **architecture)
    state = from_flax(model, variables)
    info = dict(class_names=class_names, architecture=architecture,
                preprocessing=dict(image_size=int(config.image_size), **PREPROCESSING),
                source=dict(workdir=os.path.abspath(workdir), checkpoint=which,
                            epoch=meta.get("epoch"), dataset=config.dataset))
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    torch.save(state, output)
    with open(sidecar_path(output), "w") as f:
        json.dump(info, f, indent=2)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="the run directory of hsnet_jax.train")
    parser.add_argument("--which", default="best", choices=checkpoint.WHICH, help="checkpoint (default best)")
    parser.add_argument("--output", required=True, help="the .pt file to write (the sidecar is .json beside it)")
    args = parser.parse_args(argv)
    try:
        info = export(args.workdir, args.output, args.which)
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} and {sidecar_path(args.output)}: HSNet({len(info['class_names'])} classes, "
          + ", ".join(f"{k}={v}" for k, v in info["architecture"].items())
          + f"), input {info['preprocessing']['image_size']} px")
    return 0


if __name__ == "__main__":
    sys.exit(main())
