"""HSNet (Fan et al. 2022): stem -> dilated Inception blocks -> FGAL head.

Read beside the paper's Table 1 and `docs/design.md` section 1, which fixes the branch
widths the paper leaves open. With those widths HSNet(7) has 13,662,808 parameters.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from hsnet_jax.models.inception_resnet_v1 import InceptionResnetV1Body, Stem
from hsnet_jax.models.layers import (BatchNorm, Conv, ConvBN, Dtype, he_normal, max_pool_3x3_s2,
                                     upsample_nearest)


class RDIB(nn.Module):
    """Residual dilated Inception block (Fig. 4b, eq. 7-10); keeps size and channels.

    One branch per dilation d (1x1 -> `width`, then 3x3 with padding d and dilation d), plus a
    1x1 branch; the concatenation is projected back to `ch` by a 1x1 conv with bias and added
    as `relu(x + scale * projection)`, the Inception-ResNet form of eq. 10.
    """

    width: int
    dilations: Sequence[int]
    scale: float
    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = lambda name, c, k, p=0, d=1: ConvBN(  # noqa: E731
            c, k, 1, p, d, dtype=self.dtype, bn_axis_name=self.bn_axis_name, name=name)
        branches = []
        for i, d in enumerate(self.dilations):
            b = conv(f"branch{i}_reduce", self.width, 1)(x, train)
            branches.append(conv(f"branch{i}_dilated", self.width, 3, p=d, d=d)(b, train))
        branches.append(conv("branch_1x1", self.width, 1)(x, train))
        out = jnp.concatenate(branches, axis=-1)
        out = Conv(x.shape[-1], 1, use_bias=True, dtype=self.dtype, name="project")(out)
        return nn.relu(x + self.scale * out)


class SDIB(nn.Module):
    """Stride dilated Inception block (Fig. 4a, eq. 4-6); halves the spatial size.

    One branch per `(reduce, out, d)`: 1x1 -> reduce, then 3x3 stride 2 with padding d-1 and
    dilation d -> out; plus max-pool 3x3/2 -> 1x1 -> `pool_out`. Branches are concatenated.
    """

    specs: Sequence[tuple[int, int, int]]
    pool_out: int
    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        conv = lambda name, c, k, s=1, p=0, d=1: ConvBN(  # noqa: E731
            c, k, s, p, d, dtype=self.dtype, bn_axis_name=self.bn_axis_name, name=name)
        branches = []
        for i, (reduce, out, d) in enumerate(self.specs):
            b = conv(f"branch{i}_reduce", reduce, 1)(x, train)
            branches.append(conv(f"branch{i}_dilated", out, 3, s=2, p=d - 1, d=d)(b, train))
        branches.append(conv("branch_pool", self.pool_out, 1)(max_pool_3x3_s2(x), train))
        return jnp.concatenate(branches, axis=-1)


class DilatedInceptionBody(nn.Module):
    """Table 1 from RDIB-A to RDIB-C. Returns `(f_a, f_b, f_c, features)`."""

    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool):
        kw = dict(dtype=self.dtype, bn_axis_name=self.bn_axis_name)
        feats = {}
        feats["rdib_a"] = f_a = RDIB(32, (1, 2), 0.17, name="rdib_a", **kw)(x, train)
        feats["sdib_a"] = x = SDIB(((192, 384, 1), (192, 256, 2)), 256, name="sdib_a", **kw)(f_a, train)
        feats["rdib_b"] = f_b = RDIB(128, (1, 2, 3), 0.10, name="rdib_b", **kw)(x, train)
        feats["sdib_b"] = x = SDIB(((256, 384, 1), (256, 256, 2), (256, 256, 3)), 896,
                                   name="sdib_b", **kw)(f_b, train)
        feats["rdib_c"] = f_c = RDIB(192, (1,), 0.20, name="rdib_c", **kw)(x, train)
        return f_a, f_b, f_c, feats


def _global_average(x: jax.Array) -> jax.Array:
    """Spatial mean in at least float32 (bfloat16 sums over 625 positions lose digits)."""
    return jnp.mean(x.astype(jnp.promote_types(x.dtype, jnp.float32)), axis=(1, 2))


class FGAL(nn.Module):
    """Feature guided auxiliary learning (Fig. 3b-c, eq. 11-17).

    Top-down fusion T^C = conv(F^C), T^B = F^B + up(conv(T^C)), T^A = F^A + up(conv(T^B)) with
    PyTorch's nearest rule; then per level a self-gated classifier, summed:
    logits = sum_j sigmoid(Dense(1)(psi_j)) * Dense(C)(psi_j). Returns `(logits, gates)`.

    Two choices keep the gates alive under Adam at the paper's lr 0.01 (docs/design.md
    section 1, FGAL; the paper omits BatchNorm from its equations "for simplicity"):
    - psi_j is standardised over the batch by a BatchNorm without scale or bias (no
      parameters). The raw pooled features share a large positive component (mean |psi| 0.4,
      so a gate's pre-activation is a sum over 256-1792 same-signed terms): Adam, moving every
      gate weight by ~lr per step along it, closed all three gates (sigmoid -> 0, loss stuck
      at ln C, no gradient ever again) within 25 steps at lr 0.01 and 1e-3. Standardised, a
      common shift of the gates can come only from the gate's bias.
    - The gate and classifier layers start at zero (gates at 0.5, logits at 0), so no level is
      judged by random logits before its classifier has learned anything.
    `standardize=False` drops both: psi_j is the plain pooled feature and the gate and
    classifier kernels start from He init, eq. 11-17 exactly (docs/design.md, FGAL). The
    parameters are the same either way (the standardising BatchNorm has only statistics).
    """

    num_classes: int
    standardize: bool = True
    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, f_a: jax.Array, f_b: jax.Array, f_c: jax.Array, train: bool = False):
        lateral = lambda name, c: Conv(c, 1, use_bias=True, dtype=self.dtype, name=name)  # noqa: E731
        t_c = lateral("lat_c", f_c.shape[-1])(f_c)
        t_b = f_b + upsample_nearest(lateral("lat_b", f_b.shape[-1])(t_c), f_b.shape[1:3])
        t_a = f_a + upsample_nearest(lateral("lat_a", f_a.shape[-1])(t_b), f_a.shape[1:3])
        init = nn.initializers.zeros if self.standardize else he_normal
        logits, gates = 0.0, []
        for level, t in (("a", t_a), ("b", t_b), ("c", t_c)):
            psi = _global_average(t)
            if self.standardize:
                psi = BatchNorm(use_scale=False, use_bias=False, axis_name=self.bn_axis_name if train else None,
                                name=f"norm_{level}")(psi, use_running_average=not train)
            gate = nn.sigmoid(nn.Dense(1, kernel_init=init, name=f"gate_{level}")(psi))
            y = nn.Dense(self.num_classes, kernel_init=init, name=f"classifier_{level}")(psi)
            logits = logits + gate * y
            gates.append(gate)
        return logits, jnp.concatenate(gates, axis=-1)


class HSNet(nn.Module):
    """The hierarchical scale network.

    Attributes:
      num_classes: expressions to predict.
      use_dib: dilated Inception blocks (True) or facenet's Inception-ResNet-v1 body (False).
      use_fgal: FGAL head (True) or one linear classifier on pooled F^C (False).
      fgal_standardize: FGAL's standardised, zero-initialised gates (True) or eq. 11-17
        literally with He init (False); see `FGAL`.
      freeze_stem: KTL's frozen stem: its BatchNorm uses the (ported) running statistics and
        no gradient flows into it, so XLA never computes the stem's backward pass.
      dtype: compute dtype; parameters and BatchNorm statistics stay float32.
      bn_axis_name: device axis over which training BatchNorm statistics are averaged.
    """

    num_classes: int
    use_dib: bool = True
    use_fgal: bool = True
    fgal_standardize: bool = True
    freeze_stem: bool = False
    dtype: Dtype = jnp.float32
    bn_axis_name: str | None = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False, return_features: bool = False):
        kw = dict(dtype=self.dtype, bn_axis_name=self.bn_axis_name)
        stem = Stem(name="stem", **kw)(x, train and not self.freeze_stem)
        if self.freeze_stem:
            stem = jax.lax.stop_gradient(stem)
        body = DilatedInceptionBody if self.use_dib else InceptionResnetV1Body
        f_a, f_b, f_c, features = body(name="body", **kw)(stem, train)
        features.update(stem=stem, f_a=f_a, f_b=f_b, f_c=f_c)
        if self.use_fgal:
            logits, features["gates"] = FGAL(self.num_classes, self.fgal_standardize, dtype=self.dtype,
                                             bn_axis_name=self.bn_axis_name, name="fgal")(f_a, f_b, f_c, train)
        else:
            logits = nn.Dense(self.num_classes, kernel_init=he_normal, name="classifier")(
                _global_average(f_c))
        logits = logits.astype(jnp.promote_types(self.dtype, jnp.float32))
        return (logits, features) if return_features else logits
