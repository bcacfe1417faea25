"""MTCNN's P-, R- and O-Net as ONNX graphs, written node by node (`onnx.helper`) from the shipped
Flax weights (`hsnet_jax/assets/mtcnn.npz`): no torch, no tracing, one ONNX operator per
layer of `hsnet_jax/models/mtcnn.py`.

Inputs and outputs are NHWC like the Flax networks (a Transpose at each end of the NCHW ONNX
body), float32, normalised as `hsnet_jax.faces.mtcnn_procedure.normalise_in_place` does:
  mtcnn_pnet.onnx  input [N, H, W, 3]   -> regression [N, h, w, 4], probability [N, h, w]
  mtcnn_rnet.onnx  input [N, 24, 24, 3] -> regression [N, 4], probability [N]
  mtcnn_onet.onnx  input [N, 48, 48, 3] -> regression [N, 4], landmarks [N, 10], probability [N]
The max pools are MaxPool(ceil_mode=1) as facenet's (and `max_pool_ceil`); R-Net and O-Net
flatten in (W, H, C) order (a Transpose to NWHC before Flatten), as `_flatten_whc`.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# (kind, name, argument) per layer: conv (kernel from the weights), prelu, pool (window, stride),
# flatten, dense; then the heads: (output name, layer) with "softmax" for the face probability.
LAYERS = {
    "pnet": [("conv", "conv1"), ("prelu", "prelu1"), ("pool", (2, 2)), ("conv", "conv2"), ("prelu", "prelu2"),
             ("conv", "conv3"), ("prelu", "prelu3")],
    "rnet": [("conv", "conv1"), ("prelu", "prelu1"), ("pool", (3, 2)), ("conv", "conv2"), ("prelu", "prelu2"),
             ("pool", (3, 2)), ("conv", "conv3"), ("prelu", "prelu3"), ("flatten", None), ("dense", "dense4"),
             ("prelu", "prelu4")],
    "onet": [("conv", "conv1"), ("prelu", "prelu1"), ("pool", (3, 2)), ("conv", "conv2"), ("prelu", "prelu2"),
             ("pool", (3, 2)), ("conv", "conv3"), ("prelu", "prelu3"), ("pool", (2, 2)), ("conv", "conv4"),
             ("prelu", "prelu4"), ("flatten", None), ("dense", "dense5"), ("prelu", "prelu5")],
}
HEADS = {
    "pnet": [("regression", "conv4_2"), ("probability", "conv4_1")],
    "rnet": [("regression", "dense5_2"), ("probability", "dense5_1")],
    "onet": [("regression", "dense6_2"), ("landmarks", "dense6_3"), ("probability", "dense6_1")],
}
INPUT_SIDE = {"pnet": "W", "rnet": 24, "onet": 48}


class _Graph:
    """Nodes and initialisers accumulated layer by layer; `x` is the current NCHW tensor's name."""

    def __init__(self, params: dict):
        self.params, self.nodes, self.inits, self.count, self.flat = params, [], [], 0, False

    def name(self, stem: str) -> str:
        self.count += 1
        return f"{stem}_{self.count}"

    def const(self, stem: str, value: np.ndarray) -> str:
        name = self.name(stem)
        self.inits.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, kind: str, inputs: list[str], **attrs) -> str:
        out = self.name(kind.lower())
        self.nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def layer(self, x: str, kind: str, arg) -> str:
        if kind == "conv":
            p = self.params[arg]
            kernel = np.asarray(p["kernel"], np.float32).transpose(3, 2, 0, 1)  # HWIO -> OIHW
            return self.op("Conv", [x, self.const(f"{arg}_w", kernel), self.const(f"{arg}_b", np.asarray(p["bias"]))])
        if kind == "prelu":
            slope = np.asarray(self.params[arg]["weight"], np.float32)  # per channel: [C] after Flatten
            return self.op("PRelu", [x, self.const(f"{arg}_a", slope if self.flat else slope[:, None, None])])
        if kind == "pool":
            window, stride = arg
            return self.op("MaxPool", [x], kernel_shape=[window, window], strides=[stride, stride], ceil_mode=1)
        if kind == "flatten":
            self.flat = True
            return self.op("Flatten", [self.op("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)
        p = self.params[arg]
        return self.op("Gemm", [x, self.const(f"{arg}_w", np.asarray(p["kernel"], np.float32)),
                                self.const(f"{arg}_b", np.asarray(p["bias"], np.float32))])


def build(net: str, params: dict) -> onnx.ModelProto:
    """The ONNX model of network `net` ("pnet", "rnet", "onet") with Flax `params`."""
    g = _Graph(params)
    side = INPUT_SIDE[net]
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", "H" if net == "pnet" else side, side, 3])]
    x = g.op("Transpose", ["input"], perm=[0, 3, 1, 2])
    for kind, arg in LAYERS[net]:
        x = g.layer(x, kind, arg)
    outputs = []
    for out_name, layer in HEADS[net]:
        y = g.layer(x, "conv" if net == "pnet" else "dense", layer)
        if out_name == "probability":
            y = g.op("Gather", [g.op("Softmax", [y], axis=1), g.const("one", np.array(1, np.int64))], axis=1)
        elif net == "pnet":
            y = g.op("Transpose", [y], perm=[0, 2, 3, 1])
        g.nodes.append(helper.make_node("Identity", [y], [out_name]))
        cells = ["N", "h", "w"] if net == "pnet" else ["N"]
        width = {"regression": [4], "landmarks": [10], "probability": []}[out_name]
        outputs.append(helper.make_tensor_value_info(out_name, TensorProto.FLOAT, cells + width))
    graph = helper.make_graph(g.nodes, f"mtcnn_{net}", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hsnet-jax")
    onnx.checker.check_model(model)
    return model


def write_all(output_dir: str) -> list[str]:
    """Writes mtcnn_pnet.onnx, mtcnn_rnet.onnx, mtcnn_onet.onnx into `output_dir`; their names."""
    import os

    from hsnet_jax.models.mtcnn import load_variables

    variables = load_variables()
    names = []
    for net in ("pnet", "rnet", "onet"):
        names.append(f"mtcnn_{net}.onnx")
        onnx.save(build(net, variables[net]["params"]), os.path.join(output_dir, names[-1]))
    return names
