"""MTCNN's three networks (Zhang et al. 2016) in Flax linen, NHWC, as facenet-pytorch defines them.

P-Net proposes face windows on every level of an image pyramid (fully convolutional, stride 2,
12-pixel cells), R-Net (24x24 crops) and O-Net (48x48 crops, plus five landmarks) re-score and
refine them. The detection procedure around them is `hsnet_jax.faces.mtcnn_procedure`
(`hsnet_jax.faces.detect` hands it these networks). Parameter names are facenet-pytorch's module
names (`conv1`, `prelu1`, `dense4`, ...) so that `convert/port_mtcnn.py` maps each state-dict
key mechanically; the ported weights ship as `hsnet_jax/assets/mtcnn.npz`.

Two PyTorch details matter for parity: the max pools use `ceil_mode=True` (a partial window at
the bottom/right edge is kept), and R-Net/O-Net flatten their last feature map in (W, H, C)
order (facenet permutes NCHW -> NWHC before `view`), which `_flatten_whc` reproduces.
"""

from __future__ import annotations

import functools
import importlib.resources

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

WEIGHTS_FILE = "mtcnn.npz"  # in hsnet_jax/assets, written by convert/port_mtcnn.py
Variables = dict


class PReLU(nn.Module):
    """max(0, x) + a * min(0, x) with one learned `a` per channel (PyTorch's `weight`)."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        a = self.param("weight", nn.initializers.constant(0.25), (x.shape[-1],))
        return jnp.where(x >= 0, x, a * x)


def max_pool_ceil(x: jax.Array, window: int, stride: int) -> jax.Array:
    """PyTorch's MaxPool2d(window, stride, ceil_mode=True): the last partial window counts."""
    pads = []
    for n in x.shape[1:3]:
        out = -(-(n - window) // stride) + 1  # ceil((n - window) / stride) + 1
        pads.append((0, (out - 1) * stride + window - n))
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, stride, stride, 1),
                                 ((0, 0), *pads, (0, 0)))


HIGHEST = jax.lax.Precision.HIGHEST  # full float32 products on accelerators (not TF32)


# XLA:CPU's convolution is slow in two cases P-Net hits on every photo (681x1024, level 0):
# few input channels (conv1, 3 -> 10: 12 ms, 3.7 ms as 27 fused multiply-adds) and a patch
# buffer near the size of the cache (conv3, 16 -> 32, 37 MB of patches: 36 ms whole, 10 ms in
# strips of ~64 rows; measured on a 2-core EPYC with 32 MiB of L3, 2026-11-28).
# Elsewhere (accelerators, other layers) it is the plain convolution.
CPU_TAPS = 27  # kernel taps x input channels up to which the CPU multiplies and adds
CPU_STRIP_BYTES = 4 << 20  # patch bytes (taps x channels x output pixels x 4) per strip, when over 2x


class Conv(nn.Module):
    """`nn.Conv(features, (kernel, kernel), padding="VALID")` in float32 (same parameters), with
    the CPU fast paths above. Products in full float32, as accelerators would otherwise use
    reduced-precision (TF32) ones."""

    features: int
    kernel: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        k, c = self.kernel, x.shape[-1]
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, k, c, self.features))
        bias = self.param("bias", nn.initializers.zeros, (self.features,))
        h, w = x.shape[1] - k + 1, x.shape[2] - k + 1
        cpu = jax.default_backend() == "cpu"
        if cpu and k * k * c <= CPU_TAPS:
            return sum(x[:, i:i + h, j:j + w, ch:ch + 1] * kernel[i, j, ch]
                       for i in range(k) for j in range(k) for ch in range(c)) + bias
        rows = max(1, CPU_STRIP_BYTES // (4 * k * k * c * w))
        if not cpu or h <= 2 * rows:
            return _conv(x, kernel) + bias
        return _conv_in_strips(x, kernel, rows) + bias


def _conv_in_strips(x: jax.Array, kernel: jax.Array, rows: int) -> jax.Array:
    """`_conv` as a loop (`lax.map`: one compiled body) over strips of `rows` output rows."""
    k, (n, height, _, _) = kernel.shape[0], x.shape
    h, strips = height - k + 1, -(-(height - k + 1) // rows)
    x = jnp.pad(x, ((0, 0), (0, strips * rows + k - 1 - height), (0, 0), (0, 0)))
    starts = jnp.arange(strips)[:, None] * rows + jnp.arange(rows + k - 1)[None, :]
    out = jax.lax.map(lambda strip: _conv(strip, kernel), jnp.moveaxis(x[:, starts], 1, 0))
    return jnp.moveaxis(out, 0, 1).reshape(n, strips * rows, *out.shape[3:])[:, :h]


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                        precision=HIGHEST)


def _dense(features: int, name: str) -> nn.Dense:
    return nn.Dense(features, precision=HIGHEST, name=name)


def _flatten_whc(x: jax.Array) -> jax.Array:
    """[N, H, W, C] -> [N, W*H*C] in facenet's permute(0, 3, 2, 1) order."""
    return jnp.transpose(x, (0, 2, 1, 3)).reshape(x.shape[0], -1)


class PNet(nn.Module):
    """12x12 windows, stride 2: per cell (box regression [.., 4], face probability [..]).

    `valid` (h, w), when given, is the size of the real image inside a larger zero-padded
    input (padded so that many image sizes share one compiled shape): the first pool then
    ignores the padding as ceil_mode ignores what lies past the border, so every output cell of
    the real image is the one the unpadded input gives.
    """

    @nn.compact
    def __call__(self, x: jax.Array, valid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
        x = PReLU(name="prelu1")(Conv(10, 3, name="conv1")(x))
        if valid is not None:  # conv1 output rows/cols >= valid - 2 come from padding
            rows = jnp.arange(x.shape[1])[:, None] < valid[0] - 2
            cols = jnp.arange(x.shape[2])[None, :] < valid[1] - 2
            x = jnp.where((rows & cols)[None, :, :, None], x, -jnp.inf)
        x = max_pool_ceil(x, 2, 2)
        x = PReLU(name="prelu2")(Conv(16, 3, name="conv2")(x))
        x = PReLU(name="prelu3")(Conv(32, 3, name="conv3")(x))
        probs = jax.nn.softmax(Conv(2, 1, name="conv4_1")(x), axis=-1)[..., 1]
        return Conv(4, 1, name="conv4_2")(x), probs


class RNet(nn.Module):
    """24x24 crops -> (box regression [N, 4], face probability [N])."""

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = max_pool_ceil(PReLU(name="prelu1")(Conv(28, 3, name="conv1")(x)), 3, 2)
        x = max_pool_ceil(PReLU(name="prelu2")(Conv(48, 3, name="conv2")(x)), 3, 2)
        x = PReLU(name="prelu3")(Conv(64, 2, name="conv3")(x))
        x = PReLU(name="prelu4")(_dense(128, name="dense4")(_flatten_whc(x)))
        probs = jax.nn.softmax(_dense(2, name="dense5_1")(x), axis=-1)[:, 1]
        return _dense(4, name="dense5_2")(x), probs


class ONet(nn.Module):
    """48x48 crops -> (box regression [N, 4], landmarks [N, 10] (5 x then 5 y, in the crop's
    unit square), face probability [N])."""

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        x = max_pool_ceil(PReLU(name="prelu1")(Conv(32, 3, name="conv1")(x)), 3, 2)
        x = max_pool_ceil(PReLU(name="prelu2")(Conv(64, 3, name="conv2")(x)), 3, 2)
        x = max_pool_ceil(PReLU(name="prelu3")(Conv(64, 3, name="conv3")(x)), 2, 2)
        x = PReLU(name="prelu4")(Conv(128, 2, name="conv4")(x))
        x = PReLU(name="prelu5")(_dense(256, name="dense5")(_flatten_whc(x)))
        probs = jax.nn.softmax(_dense(2, name="dense6_1")(x), axis=-1)[:, 1]
        return _dense(4, name="dense6_2")(x), _dense(10, name="dense6_3")(x), probs


NETWORKS = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def unflatten(arrays: dict[str, np.ndarray]) -> dict[str, Variables]:
    """{"pnet/conv1/kernel": array, ...} -> {"pnet": {"params": {"conv1": {"kernel": ...}}}, ...}."""
    tree: dict = {}
    for key, value in arrays.items():
        net, *path, leaf = key.split("/")
        node = tree.setdefault(net, {"params": {}})["params"]
        for p in path:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


@functools.lru_cache(maxsize=1)
def load_variables() -> dict[str, Variables]:
    """The shipped weights (facenet-pytorch's pnet.pt, rnet.pt, onet.pt, ported): no torch needed."""
    with importlib.resources.files("hsnet_jax").joinpath("assets").joinpath(WEIGHTS_FILE).open("rb") as f:
        with np.load(f) as npz:
            arrays = {k: npz[k] for k in npz.files}
    return jax.tree.map(jnp.asarray, unflatten(arrays))
