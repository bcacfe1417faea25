"""MTCNN face crops (real facenet-pytorch weights) on a real face and on an image with none."""

import numpy as np
import pytest
import skimage.data

from hsnet_jax.data.faces import centre_crop, crop_face, detect_face, face_or_centre


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_crop_face_on_a_real_face(astronaut):
    x0, y0, x1, y1 = detect_face(astronaut)
    # Eileen Collins' face in the 512x512 picture lies around x 180-270, y 60-175.
    assert 160 < x0 < 200 and 250 < x1 < 290 and 40 < y0 < 90 and 150 < y1 < 200
    crop = crop_face(astronaut, 100)
    assert crop.shape == (100, 100, 3) and crop.dtype == np.uint8
    # The crop is the face region, not the whole picture: it differs from the centre crop.
    assert np.abs(crop.astype(int) - centre_crop(astronaut, 100).astype(int)).mean() > 20
    assert crop_face(astronaut, 256).shape == (256, 256, 3)


def test_no_face_gives_none_and_the_fallback_flags_it():
    noise = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    assert crop_face(noise, 100) is None
    crop, no_face = face_or_centre(100)(noise)
    assert no_face and crop.shape == (100, 100, 3)
    np.testing.assert_array_equal(crop, centre_crop(noise, 100))


def test_centre_crop_is_the_middle_square():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, 5:15] = 255
    np.testing.assert_array_equal(centre_crop(image, 10), np.full((10, 10, 3), 255, np.uint8))
