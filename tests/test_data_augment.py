"""Augmentation: exact mirror, identity at angle 0, angle bounds, range/shape, import-light."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hsnet_jax.data.augment import augment_batch, preprocess_eval, random_params, transform
from hsnet_jax.models import normalize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).integers(0, 256, (4, 20, 20, 3), dtype=np.uint8)


def test_flip_is_exact_mirror(images):
    plain = transform(images[0], 33, False, 0.0)
    flipped = transform(images[0], 33, True, 0.0)
    np.testing.assert_array_equal(np.asarray(flipped), np.asarray(plain)[:, ::-1])
    # With a rotation too: the flip mirrors the rotated output.
    rotated = np.asarray(transform(images[0], 33, False, 3.0))
    np.testing.assert_array_equal(np.asarray(transform(images[0], 33, True, 3.0)), rotated[:, ::-1])


def test_angle_zero_same_size_is_identity(images):
    np.testing.assert_array_equal(np.asarray(transform(images[1], 20, False, 0.0)), images[1].astype(np.float32))


def test_eval_matches_jax_bilinear_resize(images):
    expected = normalize(jax.image.resize(images.astype(np.float32), (4, 48, 48, 3), "bilinear", antialias=False))
    np.testing.assert_allclose(preprocess_eval(images, 48), expected, atol=1e-4)


def test_rotation_turns_counter_clockwise_about_centre():
    image = np.zeros((11, 11, 3), np.uint8)
    image[5, 9] = 255  # right of the centre
    out = np.asarray(transform(image, 11, False, 90.0))
    assert np.argwhere(out[..., 0] > 128).tolist() == [[1, 5]]  # now above the centre


def test_rotation_by_small_angle_moves_content_and_clamps_edges():
    image = np.zeros((21, 21, 3), np.uint8)
    image[:, 10:] = 200  # right half bright
    out = np.asarray(transform(image, 21, False, 5.0))
    assert not np.array_equal(out, image.astype(np.float32))
    assert out.min() >= 0 and out.max() <= 200  # bilinear with edge clamp never leaves the range


def test_random_params_bounds_and_determinism():
    flips, angles = random_params(jax.random.key(1), 1000, max_rotation=5.0)
    assert float(jnp.abs(angles).max()) <= 5.0 and float(jnp.abs(angles).max()) > 4.5
    assert 400 < int(flips.sum()) < 600
    again = random_params(jax.random.key(1), 1000, max_rotation=5.0)
    np.testing.assert_array_equal(angles, again[1])


def test_augment_batch_shape_range_and_determinism(images):
    fn = jax.jit(augment_batch, static_argnums=(2,))
    out = fn(jax.random.key(0), images, 32)
    assert out.shape == (4, 32, 32, 3) and out.dtype == jnp.float32
    assert float(out.min()) >= -127.5 / 128 and float(out.max()) <= 127.5 / 128
    np.testing.assert_array_equal(out, fn(jax.random.key(0), images, 32))
    assert not np.array_equal(out, fn(jax.random.key(1), images, 32))
    # Each example is the transform with its own drawn parameters.
    flips, angles = random_params(jax.random.key(0), 4)
    expected = normalize(transform(images[2], 32, flips[2], angles[2]))
    np.testing.assert_allclose(out[2], expected, atol=1e-5)


def test_augment_module_is_import_light():
    out = subprocess.run([sys.executable, "-m", "tests.programs.heavy_imports", "hsnet_jax.data.augment",
                          "hsnet_jax.training.sampler"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("in_shape, size", [((256, 256), 224), ((120, 90), 75)])
def test_downscaling_equals_torchvision_antialiased_resize(in_shape, size):
    """A real photo, shrunk by torchvision's `Resize(antialias=True)` (uint8 tensor and PIL paths,
    what a PyTorch pipeline does; each rounds to uint8 its own way) and by evaluation here:
    within 1 grey level; against torchvision's float path, the same weights to float32 rounding."""
    import torch
    import torchvision.transforms.v2.functional as TF
    from PIL import Image
    from skimage import data

    photo = np.array(Image.fromarray(data.astronaut()).resize(in_shape[::-1], Image.NEAREST))
    ours = np.asarray(jax.jit(preprocess_eval, static_argnums=1)(photo[None], size)[0]) * 128.0 + 127.5
    chw = torch.from_numpy(photo).permute(2, 0, 1)
    tensor = TF.resize(chw, [size, size], antialias=True).permute(1, 2, 0).numpy()
    pil = np.asarray(TF.resize(Image.fromarray(photo), [size, size], antialias=True))
    for expected in (tensor, pil):
        assert np.abs(np.round(ours) - expected).max() <= 1.0
    exact = TF.resize(chw.float(), [size, size], antialias=True).permute(1, 2, 0).numpy()
    assert np.abs(ours - exact).max() < 0.01
    # Plain bilinear sampling (what shrinking did before) is not within a grey level.
    plain = jax.image.resize(photo.astype(np.float32), (size, size, 3), "bilinear", antialias=False)
    assert np.abs(np.asarray(plain) - pil).max() > 5


def test_downscaled_augmentation_is_resize_then_flip_and_rotation():
    """Training shrinks first (the same resize as evaluation), then flips and rotates at the
    input size, keyed per example as before; upscaling stays one sampling pass."""
    big = np.random.default_rng(1).integers(0, 256, (3, 90, 90, 3), dtype=np.uint8)
    key = jax.random.key(5)
    flips, angles = random_params(key, 3, 5.0)
    out = np.asarray(jax.jit(augment_batch, static_argnums=(2, 3))(key, big, 75, 5.0))
    resized = np.asarray(jax.jit(preprocess_eval, static_argnums=1)(big, 75)) * 128.0 + 127.5
    for i in range(3):
        expected = normalize(transform(resized[i], 75, flips[i], angles[i]))
        np.testing.assert_allclose(out[i], expected, atol=1e-5)
    unrotated = np.asarray(transform(resized[0], 75, True, 0.0))
    np.testing.assert_allclose(unrotated, resized[0][:, ::-1], atol=1e-4)
