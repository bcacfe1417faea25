"""A trained HSNet as one ONNX graph from uint8 face crops to class probabilities, by
`torch.onnx` (the torch.export-based exporter) from our PyTorch HSNet (`convert/torch_hsnet.py`,
the model `export_torch.py` writes), with the evaluation preprocessing inside the graph.

Graph: uint8 [N, S_stored, S_stored, 3] -> float -> resize to the model input as two matmuls
with constant weights (`resize_weights`: torchvision's antialiased bilinear when shrinking,
`preprocess_eval`'s half-pixel bilinear with edge clamp otherwise) -> (x - 127.5) / 128 -> NCHW
-> HSNet -> outputs `probabilities` (softmax) and `logits`, [N, classes] each. N is dynamic.
`quantize_int8` writes ONNX Runtime's int8 version of it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from convert.torch_hsnet import HSNet, from_flax
from hsnet_jax.data.augment import antialias_weights


def bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """float32 [out_size, in_size]: `preprocess_eval`'s resize when not shrinking (angle 0, no
    flip): output i samples y = (i + 0.5) * in/out - 0.5 clamped to [0, in - 1], blending
    floor(y) and floor(y) + 1 (clamped) by the fraction."""
    y = np.clip((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0, in_size - 1.0)
    y0 = np.floor(y).astype(np.int64)
    y1 = np.minimum(y0 + 1, in_size - 1)
    weights = np.zeros((out_size, in_size), np.float64)
    np.add.at(weights, (np.arange(out_size), y0), 1.0 - (y - y0))
    np.add.at(weights, (np.arange(out_size), y1), y - y0)
    return weights.astype(np.float32)


def resize_weights(stored_size: int, image_size: int) -> np.ndarray:
    """The one-axis resize of `preprocess_eval` from the stored size to the model input."""
    if stored_size > image_size:
        return antialias_weights(stored_size, image_size)
    return bilinear_weights(stored_size, image_size)


class Deployed(nn.Module):
    """uint8 NHWC crops -> (probabilities, logits): preprocessing + HSNet in eval mode."""

    def __init__(self, model: HSNet, stored_size: int, image_size: int):
        super().__init__()
        self.model = model.eval()
        self.register_buffer("resize", torch.from_numpy(resize_weights(stored_size, image_size)))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = images.to(torch.float32)
        x = torch.einsum("oh,nhwc->nowc", self.resize, x)
        x = torch.einsum("pw,nowc->nopc", self.resize, x)
        x = ((x - 127.5) / 128.0).permute(0, 3, 1, 2)
        logits = self.model(x)
        return torch.softmax(logits, dim=-1), logits


def export_onnx(variables: dict, architecture: dict, num_classes: int, stored_size: int, image_size: int,
                path: str) -> None:
    """Writes the graph above for HSNet `variables` (Flax) to `path` (one file, weights inside)."""
    model = HSNet(num_classes, **architecture)
    model.load_state_dict(from_flax(model, variables))
    deployed = Deployed(model, stored_size, image_size).eval()
    example = torch.zeros((2, stored_size, stored_size, 3), dtype=torch.uint8)
    batch = torch.export.Dim("N", min=1)
    with torch.no_grad():
        program = torch.onnx.export(deployed, (example,), dynamo=True, input_names=["images"],
                                    output_names=["probabilities", "logits"],
                                    dynamic_shapes=({0: batch},), external_data=False, verbose=False)
    program.save(path, external_data=False)


def quantize_int8(source: str, target: str) -> None:
    """ONNX Runtime's dynamic int8 quantisation of the model at `source` to `target`: the
    convolutions' and dense layers' weights int8, their activations quantised per batch at run
    time. The preprocessing's resize (Einsum) stays float: it acts on the input pixels."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "MatMul", "Gemm"])
