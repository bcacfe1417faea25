"""MTCNN face crops (hsnet_jax.faces.crops, the JAX detector) on a real face, on an image with
none, and on images too small or elongated for detection (the no-face rule)."""

import numpy as np
import pytest
import skimage.data

from hsnet_jax.faces.crops import centre_crop, crop_box, detect_faces, face_or_centre


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_crop_of_a_real_face(astronaut):
    faces, = detect_faces([astronaut], max_side=512)
    x0, y0, x1, y1 = faces.boxes[0]
    # Eileen Collins' face in the 512x512 picture lies around x 180-270, y 60-175.
    assert 160 < x0 < 200 and 250 < x1 < 290 and 40 < y0 < 90 and 150 < y1 < 200
    (crop, no_face), = face_or_centre(100)([astronaut])
    assert not no_face and crop.shape == (100, 100, 3) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, crop_box(astronaut, faces.boxes[0], 100))
    # The crop is the face region, not the whole picture: it differs from the centre crop.
    assert np.abs(crop.astype(int) - centre_crop(astronaut, 100).astype(int)).mean() > 20


def test_a_capped_side_finds_the_same_face_scaled_back(astronaut):
    big = np.repeat(np.repeat(astronaut, 2, 0), 2, 1)  # 1024 x 1024
    full, capped = detect_faces([astronaut])[0], detect_faces([big], max_side=512)[0]
    np.testing.assert_allclose(capped.boxes, full.boxes * 2, atol=4)  # bilinear != duplicated pixels


def test_no_face_and_images_too_small_or_elongated_keep_the_centre():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, shape + (3,), dtype=np.uint8)
              for shape in ((120, 160), (1, 1), (5, 5), (15, 15), (30, 2000), (2000, 30))]
    results = face_or_centre(100)(images)
    for image, (crop, no_face) in zip(images, results):
        assert no_face, image.shape
        np.testing.assert_array_equal(crop, centre_crop(image, 100))


def test_centre_crop_is_the_middle_square():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, 5:15] = 255
    np.testing.assert_array_equal(centre_crop(image, 10), np.full((10, 10, 3), 255, np.uint8))


@pytest.mark.slow
def test_rafd_images_too_small_for_detection_are_listed_as_no_face(tmp_path):
    import data_trees
    from hsnet_jax.data import load_split, prepare_dataset
    from hsnet_jax.data.reading import load_rgb

    manual = str(tmp_path / "RaFD")
    data_trees.rafd(manual, subjects=(1, 2, 3, 4, 5), angles=("090",), emotions=("angry", "happy"))
    small = {f"Rafd090_0{s}_Caucasian_male_{e}_frontal.jpg": shape
             for s, e, shape in ((6, "angry", (15, 15)), (7, "happy", (1, 1)), (8, "angry", (5, 5)),
                                 (9, "happy", (30, 2000)))}
    for k, (name, shape) in enumerate(small.items()):
        data_trees.save(f"{manual}/{name}", data_trees.image(k, shape))
    summary = prepare_dataset("rafd", data_dir=str(tmp_path / "data"), manual_dir=manual)
    assert summary["no_face"] == sorted(small)
    stored = {}
    for split in ("train", "validation", "test"):
        part = load_split("rafd", split, str(tmp_path / "data"))
        stored.update(zip(part.metadata["file_name"], part.images))
    for name in small:
        np.testing.assert_array_equal(stored[name], centre_crop(load_rgb(f"{manual}/{name}"), 100))
