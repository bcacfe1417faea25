"""Building blocks shared by HSNet and Inception-ResNet-v1: Conv, BatchNorm, ConvBN, resize,
input scaling.

Everything is NHWC. Parameter names mirror facenet-pytorch (`conv`, `bn`, `conv2d`) so that a
PyTorch state-dict key maps onto a Flax path mechanically (see `convert/port_stem.py`).
"""

from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Dtype = Any
IntPair = int | tuple[int, int]

# He et al. 2015 (the paper's eq. 18, "HeInit"): every trained kernel starts from this.
he_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")

BN_EPSILON = 1e-3  # facenet-pytorch's BasicConv2d
BN_MOMENTUM = 0.9  # Flax convention; PyTorch momentum 0.1


def normalize(pixels: jax.Array) -> jax.Array:
    """Maps uint8-range pixels to facenet-pytorch's `fixed_image_standardization` range.

    The ported VGGFace2 stem was trained on `(x - 127.5) / 128`; every input path of this
    package (training, evaluation, prediction, benchmark) goes through this one function.
    """
    return (jnp.asarray(pixels, jnp.float32) - 127.5) / 128.0


def _pair(v: IntPair) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


class Conv(nn.Module):
    """A 2-D convolution on `jax.lax.conv_general_dilated`, with `rhs_dilation` for eq. 2.

    `padding` is PyTorch's symmetric integer padding, so a layer reads exactly like its
    facenet-pytorch or Table 1 counterpart (k, stride, padding, dilation). The kernel is HWIO.
    """

    features: int
    kernel_size: IntPair
    strides: IntPair = 1
    padding: IntPair = 0
    dilation: IntPair = 1
    use_bias: bool = False
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kh, kw = _pair(self.kernel_size)
        ph, pw = _pair(self.padding)
        kernel = self.param("kernel", he_normal, (kh, kw, x.shape[-1], self.features), jnp.float32)
        conv = functools.partial(_conv, strides=_pair(self.strides), padding=((ph, ph), (pw, pw)),
                                 dilation=_pair(self.dilation))
        # The CPU formulation is chosen when the program is lowered for its platform, so a
        # program exported for an accelerator on a CPU host keeps the plain convolution.
        y = jax.lax.platform_dependent(x.astype(self.dtype), kernel.astype(self.dtype),
                                       cpu=functools.partial(_conv_cpu, conv), default=conv)
        if self.use_bias:
            bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
            y = y + bias.astype(self.dtype)
        return y


def _conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int], padding, dilation: tuple[int, int]) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, strides, padding, rhs_dilation=dilation,
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


# XLA:CPU's convolution is slow on two kinds of HSNet layer (issue 26, BENCHMARKS.md "Against
# PyTorch on the CPU"): 1x1 convolutions, whose backward pass physically transposes the kernel
# and the activations, and large-map convolutions, whose patch buffer outgrows the cache (the
# stem's 3x3 layers at 224 px: 2-5x PyTorch's time). On the CPU a 1x1 convolution is therefore
# a dot over the channels, and a batch whose patches exceed CPU_PATCH_BYTES is convolved one
# image at a time (one compiled body).
CPU_PATCH_BYTES = 16 << 20


def _conv_cpu(conv, x: jax.Array, kernel: jax.Array) -> jax.Array:
    kh, kw, cin, _ = kernel.shape
    if (kh, kw) == (1, 1) and conv.keywords["strides"] == (1, 1) and conv.keywords["padding"] == ((0, 0), (0, 0)):
        return jax.lax.dot_general(x, kernel[0, 0], (((3,), (0,)), ((), ())))
    out = jax.eval_shape(conv, x[:1], kernel).shape
    batch = x.shape[0]  # symbolic in a batch-polymorphic export (jax.export): the plain convolution
    patch_bytes = x.dtype.itemsize * out[1] * out[2] * kh * kw * cin  # per image
    if isinstance(batch, int) and batch > 1 and batch * patch_bytes > CPU_PATCH_BYTES:
        return jax.lax.map(lambda image: conv(image[None], kernel)[0], x)
    return conv(x, kernel)


class BatchNorm(nn.Module):
    """BatchNorm over all axes but the last, keeping its running statistics as PyTorch does.

    The current batch is normalised like `flax.linen.BatchNorm` (mean and biased variance,
    E[x^2] - E[x]^2 in at least float32, averaged over the device axis `axis_name`), but the
    running variance is updated with the UNBIASED batch variance, var * n / (n - 1), where n
    counts the values reduced over the whole synced batch (batch x height x width on every
    device), as `torch.nn.BatchNorm{1,2}d` does. (Flax keeps the biased one: for FGAL's
    standardisation of pooled features, n = batch size, that is 3.2% lower at batch 32.)
    Parameter and statistic names are Flax's (`scale`, `bias`; `mean`, `var`), so checkpoints
    and the ported stem load unchanged.
    """

    momentum: float = BN_MOMENTUM
    epsilon: float = BN_EPSILON
    use_scale: bool = True
    use_bias: bool = True
    dtype: Dtype | None = None  # output dtype; None = the input's
    axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, use_running_average: bool) -> jax.Array:
        c = x.shape[-1]
        axes = tuple(range(x.ndim - 1))
        ra_mean = self.variable("batch_stats", "mean", lambda: jnp.zeros((c,), jnp.float32))
        ra_var = self.variable("batch_stats", "var", lambda: jnp.ones((c,), jnp.float32))
        if use_running_average:
            mean, var = ra_mean.value, ra_var.value
        else:
            xs = x.astype(jnp.promote_types(x.dtype, jnp.float32))
            moments = jnp.stack([xs.mean(axes), jnp.square(xs).mean(axes)])
            n = math.prod(x.shape[i] for i in axes)
            if self.axis_name is not None and not self.is_initializing():
                moments = jax.lax.pmean(moments, self.axis_name)
                n = n * jax.lax.psum(1, self.axis_name)
            mean, var = moments[0], jnp.maximum(0.0, moments[1] - jnp.square(moments[0]))
            if not self.is_initializing():
                ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
                ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * (var * (n / (n - 1)))
        y = x - mean
        mul = jax.lax.rsqrt(var + self.epsilon)
        if self.use_scale:
            mul = mul * self.param("scale", nn.initializers.ones, (c,), jnp.float32)
        y = y * mul
        if self.use_bias:
            y = y + self.param("bias", nn.initializers.zeros, (c,), jnp.float32)
        return y.astype(self.dtype or x.dtype)


class ConvBN(nn.Module):
    """Convolution without bias -> BatchNorm(eps 1e-3) -> ReLU (facenet's `BasicConv2d`).

    `bn_axis_name` names the device axis over which BatchNorm statistics are averaged during
    training, so a run's numbers do not depend on how many devices share the batch.
    """

    features: int
    kernel_size: IntPair
    strides: IntPair = 1
    padding: IntPair = 0
    dilation: IntPair = 1
    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        x = Conv(self.features, self.kernel_size, self.strides, self.padding, self.dilation,
                 dtype=self.dtype, name="conv")(x)
        x = BatchNorm(dtype=self.dtype, axis_name=self.bn_axis_name if train else None, name="bn")(
            x, use_running_average=not train)
        return nn.relu(x)


def max_pool_3x3_s2(x: jax.Array) -> jax.Array:
    """3x3 max-pool, stride 2, no padding (PyTorch `MaxPool2d(3, stride=2)`)."""
    return nn.max_pool(x, (3, 3), strides=(2, 2), padding="VALID")


def nearest_source_indices(in_size: int, out_size: int) -> np.ndarray:
    """PyTorch's `interpolate(mode="nearest")` index rule, bit for bit.

    PyTorch computes `scale = float32(in / out)` and `src = min(floor(dst * scale), in - 1)`
    (with exact shortcuts for equal sizes and 2x). For 5->12 and 12->25 this is not what
    `jax.image.resize(method="nearest")` gives (it samples pixel centres).
    """
    dst = np.arange(out_size)
    if out_size == in_size:
        return dst
    if out_size == 2 * in_size:
        return dst >> 1
    scale = np.float32(in_size) / np.float32(out_size)
    src = np.floor(dst.astype(np.float32) * scale).astype(np.int64)
    return np.minimum(src, in_size - 1)


def upsample_nearest(x: jax.Array, size: Sequence[int]) -> jax.Array:
    """Nearest-neighbour resize of an NHWC map to `size` (H, W) with PyTorch's index rule."""
    rows = nearest_source_indices(x.shape[1], size[0])
    cols = nearest_source_indices(x.shape[2], size[1])
    return x[:, rows][:, :, cols]
