"""Augmentation and evaluation preprocessing on the accelerator, in pure jnp.

The paper's augmentation (random horizontal flip, rotation within +-5 degrees) and the resize
to the model input are one geometric map, so they are applied as ONE bilinear sampling pass:
every output pixel is mapped back to a source position and the four neighbours there are
blended. Conventions:

- Pixel centres (half-pixel): output pixel (i, j) of an S x S output samples source position
  y = (i + 0.5) * H / S - 0.5, x = (j + 0.5) * W / S - 0.5, as `jax.image.resize(...,
  "bilinear", antialias=False)` and PyTorch's `align_corners=False` do. At angle 0 without a
  flip the result is exactly the evaluation resize.
- Rotation is about the image centre ((H - 1) / 2, (W - 1) / 2); a positive angle turns the
  content counter-clockwise. The flip mirrors the output about the same centre, so a flipped
  output is the exact mirror of the unflipped one at the same angle.
- Border rule: edge clamp. A source position outside the image is clamped to the nearest
  edge, so the corners that a rotation uncovers repeat the edge pixels (no black wedges).
- Upscaling (a stored image not larger than the input, e.g. RaFD's 100 px faces at 224) is this
  one pass. Downscaling (KDEF and FERG-DB stored at 256 px, trained at 224) is done as a
  PyTorch pipeline `Resize -> RandomHorizontalFlip -> RandomRotation` does it: first
  torchvision's antialiased bilinear `Resize` (`shrink`: two matmuls with torchvision's
  weights, equal to `torchvision.transforms.Resize(antialias=True)` on the uint8 image within
  1 grey level), then the flip and rotation as above at the input size.

Everything is per example (vmap over the batch), so it runs unchanged on one device's shard
inside `shard_map`. This module imports only jax and the model's `normalize`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from hsnet_jax.models.layers import normalize


def transform(image: jax.Array, image_size: int, flip: jax.Array, angle: jax.Array) -> jax.Array:
    """One image [H, W, C] -> float32 [S, S, C] pixels, flipped if `flip`, rotated by `angle` degrees."""
    h, w = image.shape[0], image.shape[1]
    s = image_size
    # Offsets from the centre, written so that pixel j and S-1-j get exactly opposite values.
    half = jnp.arange(s, dtype=jnp.float32) + 0.5 - s / 2.0
    dy = (half * (h / s))[:, None]
    dx = (half * (w / s))[None, :]
    dx = jnp.where(flip, -dx, dx)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    theta = jnp.deg2rad(jnp.asarray(angle, jnp.float32))
    cos, sin = jnp.cos(theta), jnp.sin(theta)
    # Inverse map (y points down): the output shows the source turned counter-clockwise.
    src_y = jnp.clip(cy + cos * dy + sin * dx, 0.0, h - 1.0)
    src_x = jnp.clip(cx - sin * dy + cos * dx, 0.0, w - 1.0)
    y0 = jnp.floor(src_y).astype(jnp.int32)
    x0 = jnp.floor(src_x).astype(jnp.int32)
    y1 = jnp.minimum(y0 + 1, h - 1)
    x1 = jnp.minimum(x0 + 1, w - 1)
    wy = (src_y - y0)[..., None]
    wx = (src_x - x0)[..., None]
    pixels = image.astype(jnp.float32)
    top = pixels[y0, x0] * (1.0 - wx) + pixels[y0, x1] * wx
    bottom = pixels[y1, x0] * (1.0 - wx) + pixels[y1, x1] * wx
    return top * (1.0 - wy) + bottom * wy


@functools.lru_cache(maxsize=32)
def antialias_weights(in_size: int, out_size: int) -> np.ndarray:
    """float32 [out_size, in_size]: torchvision's (and PIL's) antialiased bilinear resize along
    one axis. Output pixel i averages the source pixels under a triangle of half-width
    max(in/out, 1) source pixels centred at (i + 0.5) * in/out, normalised to sum 1 (so at
    the borders the weights are renormalised, never clamped or zero-padded)."""
    scale = in_size / out_size
    support = max(scale, 1.0)
    weights = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        centre = scale * (i + 0.5)
        lo = max(int(centre - support + 0.5), 0)
        hi = min(int(centre + support + 0.5), in_size)
        j = np.arange(lo, hi)
        w = np.maximum(0.0, 1.0 - np.abs((j - centre + 0.5) / support))
        weights[i, lo:hi] = w / w.sum()
    return weights.astype(np.float32)


def shrinks(shape: tuple[int, ...], image_size: int) -> bool:
    """Whether images of `shape` [..., H, W, C] are larger than the model input on some side."""
    return shape[-3] > image_size or shape[-2] > image_size


def shrink(images_uint8: jax.Array, image_size: int) -> jax.Array:
    """uint8 [B, H, W, C] -> float32 [B, S, S, C], torchvision's antialiased bilinear resize
    (separable: one matmul per axis, at full float32 precision so TF32/bf16 matmul defaults
    on accelerators cannot cost a grey level)."""
    rows = jnp.asarray(antialias_weights(images_uint8.shape[1], image_size))
    cols = jnp.asarray(antialias_weights(images_uint8.shape[2], image_size))
    pixels = images_uint8.astype(jnp.float32)
    highest = jax.lax.Precision.HIGHEST
    pixels = jnp.einsum("oh,bhwc->bowc", rows, pixels, precision=highest)
    return jnp.einsum("pw,bowc->bopc", cols, pixels, precision=highest)


def random_params(key: jax.Array, batch_size: int, max_rotation: float = 5.0) -> tuple[jax.Array, jax.Array]:
    """Per-example flips (bool [B], probability 1/2) and angles (float32 [B] in +-max_rotation)."""
    flip_key, angle_key = jax.random.split(key)
    flips = jax.random.bernoulli(flip_key, 0.5, (batch_size,))
    angles = jax.random.uniform(angle_key, (batch_size,), jnp.float32, -max_rotation, max_rotation)
    return flips, angles


def augment_batch(key: jax.Array, images_uint8: jax.Array, image_size: int,
                  max_rotation: float = 5.0) -> jax.Array:
    """Training input: uint8 [B, H, W, 3] -> normalised float32 [B, S, S, 3], randomly flipped and rotated."""
    flips, angles = random_params(key, images_uint8.shape[0], max_rotation)
    if shrinks(images_uint8.shape, image_size):  # Resize, then flip + rotation at the input size
        images_uint8 = shrink(images_uint8, image_size)
    pixels = jax.vmap(transform, in_axes=(0, None, 0, 0))(images_uint8, image_size, flips, angles)
    return normalize(pixels)


def preprocess_eval(images_uint8: jax.Array, image_size: int) -> jax.Array:
    """Evaluation input: uint8 [B, H, W, 3] -> normalised float32 [B, S, S, 3], resized only."""
    if shrinks(images_uint8.shape, image_size):
        return normalize(shrink(images_uint8, image_size))
    pixels = jax.vmap(transform, in_axes=(0, None, None, None))(
        images_uint8, image_size, jnp.asarray(False), jnp.asarray(0.0))
    return normalize(pixels)
