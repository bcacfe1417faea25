"""Face detection in JAX (hsnet_jax/faces/detect.py: the procedure of hsnet_jax/faces/mtcnn_procedure.py
on the Flax networks) against facenet-pytorch's single-image `MTCNN.detect` on real photos: the
same faces, boxes and landmarks within 1 pixel, probabilities within 1e-4; its pieces (area
resizing, NMS) against the torch / torchvision functions facenet calls; and a photo's faces the
same to the bit alone, in a batch and in another order."""

import numpy as np
import pytest
import skimage.data
import torch
from facenet_pytorch import MTCNN
from PIL import Image
from torch.nn.functional import interpolate
from torchvision.ops import batched_nms

from hsnet_jax.faces import detect
from hsnet_jax.faces import mtcnn_procedure as procedure
from hsnet_jax.faces.tracking import iou
from tests import photos


def test_area_resize_is_torchs_to_the_bit():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 37, 53, 3), dtype=np.uint8)
    sums = procedure.integral(images)
    regions = [(0, 0, 0, 37, 53, 24, 24), (1, 3, 5, 20, 50, 24, 24), (0, 10, 2, 14, 9, 48, 48),
               (1, 0, 0, 37, 53, 23, 32)]
    for b, y0, x0, y1, x1, oh, ow in regions:
        crop = torch.from_numpy(images[b:b + 1, y0:y1, x0:x1].astype(np.float32)).permute(0, 3, 1, 2)
        want = interpolate(crop, size=(oh, ow), mode="area").permute(0, 2, 3, 1).numpy()
        got = procedure.area_resize(sums, b, y0, x0, y1, x1, oh, ow)
        np.testing.assert_array_equal(got, want)
    whole = interpolate(torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2), size=(22, 31), mode="area")
    np.testing.assert_array_equal(procedure.resize_whole(sums, 22, 31), whole.permute(0, 2, 3, 1).numpy())


def test_nms_is_torchvisions_batched_nms():
    rng = np.random.default_rng(0)
    corners = rng.uniform(0, 80, (300, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.uniform(5, 30, (300, 2)).astype(np.float32)], 1)
    scores = rng.uniform(0, 1, 300).astype(np.float32)
    groups = rng.integers(0, 3, 300)
    for threshold in (0.5, 0.7):
        want = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(groups), threshold)
        np.testing.assert_array_equal(procedure.nms(boxes, scores, groups, threshold), want.numpy())


def test_bucket_sizes():
    assert [detect.bucket(n) for n in (1, 2, 3, 5, 7, 9, 100, 153)] == [1, 2, 3, 6, 8, 12, 128, 192]
    assert detect.bucket(3, 16) == 16
    assert [detect.level_bucket(n) for n in (12, 17, 256, 257, 513)] == [16, 32, 256, 288, 576]


def test_images_too_small_have_no_faces():
    found = detect.Detector().detect(np.zeros((2, 15, 15, 3), np.uint8))
    assert [len(f) for f in found] == [0, 0] and found[0].boxes.shape == (0, 4)


@pytest.fixture(scope="module")
def facenet():
    torch.set_num_threads(1)
    return MTCNN(keep_all=True, device="cpu")


PARITY_PHOTOS = {
    "astronaut": skimage.data.astronaut,
    "cameraman": lambda: np.repeat(skimage.data.camera()[:, :, None], 3, 2),
    "grace_hopper": photos.grace_hopper,
    "group": photos.group_photo,
    "rafd_sized": lambda: np.asarray(Image.fromarray(skimage.data.astronaut()).resize((681, 1024))),
}
# What facenet-pytorch finds on each (checked below, so a change in either shows).
EXPECTED_FACES = {"astronaut": 1, "cameraman": 1, "grace_hopper": 1, "group": 7, "rafd_sized": 1}


@pytest.mark.slow
def test_same_faces_as_facenet_on_real_photos(facenet):
    worst = {"box": 0.0, "prob": 0.0, "landmarks": 0.0}
    detector = detect.Detector()
    for name, load in PARITY_PHOTOS.items():
        image = load()
        boxes, probs, landmarks = facenet.detect(image, landmarks=True)
        faces = detector.detect(image[None])[0]
        assert len(boxes) == len(faces) == EXPECTED_FACES[name], name
        worst["box"] = max(worst["box"], np.abs(faces.boxes - boxes).max())
        worst["prob"] = max(worst["prob"], np.abs(faces.probs - probs.astype(np.float32)).max())
        worst["landmarks"] = max(worst["landmarks"], np.abs(faces.landmarks - landmarks).max())
    print("max differences", worst)
    assert worst["box"] <= 1 and worst["landmarks"] <= 1 and worst["prob"] <= 1e-4


@pytest.mark.slow
def test_a_photo_gets_the_same_faces_alone_in_a_batch_and_in_another_order():
    group, astronaut = photos.group_photo(), skimage.data.astronaut()
    detector = detect.Detector()
    alone = detector.detect([group])[0]
    batch = detector.detect(np.stack([group, group[:, ::-1], np.zeros_like(group)]))
    reordered = detector.detect([astronaut, np.zeros_like(group), group])
    assert [len(f) for f in batch] == [7, 7, 0] and len(alone) == 7
    for other in (batch[0], reordered[2]):  # bit for bit, as facenet's single-image detect
        for field in ("boxes", "probs", "landmarks"):
            np.testing.assert_array_equal(getattr(other, field), getattr(alone, field))
    np.testing.assert_array_equal(reordered[0].boxes, detector.detect([astronaut])[0].boxes)
    # The mirrored photo's faces are the mirrored boxes (MTCNN is not exactly mirror-symmetric).
    mirrored = np.sort(900 - batch[1].boxes[:, [2, 0]], axis=0)
    np.testing.assert_allclose(mirrored, np.sort(alone.boxes[:, [0, 2]], axis=0), atol=12)


def test_refind_finds_the_faces_near_where_they_were_and_nothing_elsewhere():
    """R-Net and O-Net around known boxes (a video's frames between two whole detections): the
    same faces, each box overlapping a whole detection's by IoU > 0.7, also from boxes a fifth
    of a face off; nothing from boxes over the background, nothing from none; shrunk like `detect`."""
    group = photos.group_photo()
    detector = detect.Detector()
    whole = detector.detect([group])[0]
    sides = (whole.boxes[:, 2:] - whole.boxes[:, :2]).max(1, keepdims=True)
    for near in (whole.boxes, whole.boxes + np.concatenate([sides, -sides, sides, -sides], 1) * 0.2):
        found = detector.refind(group, near)
        assert len(found) == len(whole) == 7
        assert iou(whole.boxes, found.boxes).max(1).min() > 0.7
        assert (found.probs > 0.9).all()
    background = np.array([[5, 5, 45, 45], [850, 5, 890, 45]], np.float32)
    assert len(detector.refind(np.full_like(group, 90), whole.boxes)) == 0
    assert len(detector.refind(group, np.zeros((0, 4), np.float32))) == 0
    assert len(detector.refind(group, background)) == 0
    small = detector.detect([group], max_side=450)[0]  # boxes in the photo's pixels, as refind's
    shrunk = detector.refind(group, small.boxes, max_side=450)
    assert len(shrunk) == len(small) >= 6
    assert iou(small.boxes, shrunk.boxes).max(1).min() > 0.7
