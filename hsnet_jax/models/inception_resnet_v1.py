"""Inception-ResNet-v1 exactly as facenet-pytorch builds it: the stem HSNet borrows, the body
the paper's baseline uses (Table 6), and the whole face-embedding network.

Sub-module names follow facenet-pytorch's state-dict keys with `.N` written `_N`
(`repeat_1.0.branch1.1.conv.weight` -> `body/repeat_1_0/branch1_1/conv/kernel`), and the stem's
layers sit under `stem` in every model, so ported weights drop into HSNet unchanged.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from hsnet_jax.models.layers import BatchNorm, Conv, ConvBN, Dtype, max_pool_3x3_s2


class _ConvBNs(nn.Module):
    """A module built of ConvBN layers that share its compute dtype and BatchNorm axis."""

    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.nowrap
    def conv(self, name: str, c: int, k, s=1, p=0) -> ConvBN:
        """ConvBN `name`: k x k (or (kh, kw)) kernel, stride s, padding p, `c` outputs."""
        return ConvBN(c, k, s, p, dtype=self.dtype, bn_axis_name=self.bn_axis_name, name=name)


class Stem(_ConvBNs):
    """The Inception-ResNet-v1 stem (Table 1, "Stem"): 224x224x3 -> 25x25x256.

    This is the part of the VGGFace2 face-recognition network that KTL transfers to HSNet.
    """

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = self.conv("conv2d_1a", 32, 3, s=2)(x, train)
        x = self.conv("conv2d_2a", 32, 3)(x, train)
        x = self.conv("conv2d_2b", 64, 3, p=1)(x, train)
        x = max_pool_3x3_s2(x)  # maxpool_3a
        x = self.conv("conv2d_3b", 80, 1)(x, train)
        x = self.conv("conv2d_4a", 192, 3)(x, train)
        return self.conv("conv2d_4b", 256, 3, s=2)(x, train)


class _Block(_ConvBNs):
    """Common residual tail of Block35/17/8: concat branches, 1x1 projection with bias,
    `x + scale * projection`, then ReLU unless `no_relu` (facenet's final `block8`)."""

    scale: float = 1.0
    no_relu: bool = False

    @nn.nowrap
    def branches(self, x: jax.Array, train: bool) -> list[jax.Array]:
        raise NotImplementedError

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out = jnp.concatenate(self.branches(x, train), axis=-1)
        out = Conv(x.shape[-1], 1, use_bias=True, dtype=self.dtype, name="conv2d")(out)
        out = x + self.scale * out
        return out if self.no_relu else nn.relu(out)


class Block35(_Block):
    """35x35 Inception-ResNet-A block (25x25 at 224 input), 256 channels."""

    @nn.nowrap
    def branches(self, x, train):
        b0 = self.conv("branch0", 32, 1)(x, train)
        b1 = self.conv("branch1_0", 32, 1)(x, train)
        b1 = self.conv("branch1_1", 32, 3, p=1)(b1, train)
        b2 = self.conv("branch2_0", 32, 1)(x, train)
        b2 = self.conv("branch2_1", 32, 3, p=1)(b2, train)
        b2 = self.conv("branch2_2", 32, 3, p=1)(b2, train)
        return [b0, b1, b2]


class Block17(_Block):
    """17x17 Inception-ResNet-B block (12x12 at 224 input), 896 channels, 1x7/7x1 kernels."""

    @nn.nowrap
    def branches(self, x, train):
        b0 = self.conv("branch0", 128, 1)(x, train)
        b1 = self.conv("branch1_0", 128, 1)(x, train)
        b1 = self.conv("branch1_1", 128, (1, 7), p=(0, 3))(b1, train)
        b1 = self.conv("branch1_2", 128, (7, 1), p=(3, 0))(b1, train)
        return [b0, b1]


class Block8(_Block):
    """8x8 Inception-ResNet-C block (5x5 at 224 input), 1792 channels, 1x3/3x1 kernels."""

    @nn.nowrap
    def branches(self, x, train):
        b0 = self.conv("branch0", 192, 1)(x, train)
        b1 = self.conv("branch1_0", 192, 1)(x, train)
        b1 = self.conv("branch1_1", 192, (1, 3), p=(0, 1))(b1, train)
        b1 = self.conv("branch1_2", 192, (3, 1), p=(1, 0))(b1, train)
        return [b0, b1]


class Mixed6a(_ConvBNs):
    """Reduction-A: 256 -> 896 channels, stride 2."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b0 = self.conv("branch0", 384, 3, s=2)(x, train)
        b1 = self.conv("branch1_0", 192, 1)(x, train)
        b1 = self.conv("branch1_1", 192, 3, p=1)(b1, train)
        b1 = self.conv("branch1_2", 256, 3, s=2)(b1, train)
        return jnp.concatenate([b0, b1, max_pool_3x3_s2(x)], axis=-1)


class Mixed7a(_ConvBNs):
    """Reduction-B: 896 -> 1792 channels, stride 2."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        b0 = self.conv("branch0_0", 256, 1)(x, train)
        b0 = self.conv("branch0_1", 384, 3, s=2)(b0, train)
        b1 = self.conv("branch1_0", 256, 1)(x, train)
        b1 = self.conv("branch1_1", 256, 3, s=2)(b1, train)
        b2 = self.conv("branch2_0", 256, 1)(x, train)
        b2 = self.conv("branch2_1", 256, 3, p=1)(b2, train)
        b2 = self.conv("branch2_2", 256, 3, s=2)(b2, train)
        return jnp.concatenate([b0, b1, b2, max_pool_3x3_s2(x)], axis=-1)


class InceptionResnetV1Body(nn.Module):
    """Everything between the stem and the pooling: the baseline body of Table 6.

    Returns `(f_a, f_b, f_c, features)`: the outputs of repeat_1, repeat_2 and the final
    block8, which take the places of F^A, F^B and F^C when `use_dib=False`.
    """

    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool):
        kw: dict[str, Any] = dict(dtype=self.dtype, bn_axis_name=self.bn_axis_name)
        for i in range(5):
            x = Block35(scale=0.17, name=f"repeat_1_{i}", **kw)(x, train)
        f_a = x
        x = Mixed6a(name="mixed_6a", **kw)(x, train)
        for i in range(10):
            x = Block17(scale=0.10, name=f"repeat_2_{i}", **kw)(x, train)
        f_b = x
        x = Mixed7a(name="mixed_7a", **kw)(x, train)
        for i in range(5):
            x = Block8(scale=0.20, name=f"repeat_3_{i}", **kw)(x, train)
        f_c = Block8(no_relu=True, name="block8", **kw)(x, train)
        return f_a, f_b, f_c, {"repeat_1": f_a, "repeat_2": f_b, "block8": f_c}


class InceptionResnetV1(nn.Module):
    """facenet-pytorch's `InceptionResnetV1(classify=False)`: a 512-d L2-normalised face embedding.

    Input is NHWC, already `normalize`d. Dropout (p=0.6) is active only with `train=True`
    and then needs a `"dropout"` rng.
    """

    dropout_rate: float = 0.6
    dtype: Dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        x = Stem(dtype=self.dtype, name="stem")(x, train)
        _, _, x, _ = InceptionResnetV1Body(dtype=self.dtype, name="body")(x, train)
        x = jnp.mean(x.astype(jnp.float32), axis=(1, 2))  # avgpool_1a
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = nn.Dense(512, use_bias=False, name="last_linear")(x)
        x = BatchNorm(name="last_bn")(x, use_running_average=not train)
        return x / jnp.maximum(jnp.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
