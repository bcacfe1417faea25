"""Face boxes and face crops with MTCNN (`hsnet_jax.faces.detect`: Flax networks, the ported weights
of facenet-pytorch shipped in the package; no torch).

Used when preparing RaFD (100x100 crops) and KDEF (256x256), as in the paper, CK+ and JAFFE,
and by `predict --detect_face`; AffectNet and ExpW give their boxes (data/boxes.py) and are
cropped by the same rule. The crop (`hsnet_jax.faces.crop_rule`, shared with `hsnet_jax.deploy`)
is a square around a face box, enlarged by `margin` (a fraction of the box's longer side) and
clamped at the image border by edge replication, then resized bilinearly; preparation crops
the largest face.

Rule for images without a detected face (profile views of RaFD, say, or an image under 20
pixels on its short side, too small for MTCNN's smallest 12-pixel window at min_face_size 20):
preparation keeps the centre square of the image instead, resized to the crop size, and lists
the file under `no_face` in the dataset's metadata and the prepare summary. Nothing is dropped.
"""

from __future__ import annotations

import functools
from typing import Sequence

import numpy as np

from hsnet_jax.faces.crop_rule import MARGIN, centre_crop, crop_box  # noqa: F401 -- the crop rule, jax-free
from hsnet_jax.faces.detect import Detector
from hsnet_jax.faces.mtcnn_procedure import MIN_FACE_SIZE, Faces, too_small  # noqa: F401

# Preparation detects on the photo shrunk to this side (RaFD 681x1024 -> 341x512: ~4x fewer
# pixels; its faces are 200+ px, far above MTCNN's 20-px minimum). `predict` detects at full
# resolution unless told otherwise (`--max_side`).
PREPARE_MAX_SIDE = 512


@functools.lru_cache(maxsize=1)
def detector() -> Detector:
    return Detector()


def detect_faces(images: Sequence[np.ndarray], max_side: int | None = None) -> list[Faces]:
    """Every face of each RGB uint8 image, largest first, in the image's pixel coordinates
    (images larger than `max_side` shrunk for detection, each detected on its own)."""
    return detector().detect(images, max_side)


def refind_faces(image: np.ndarray, near: np.ndarray, max_side: int | None = None) -> Faces:
    """The faces around the boxes `near` (where a video's tracks expect them): R-Net and O-Net
    on those boxes, no pyramid (`Procedure.refind_one`)."""
    return detector().refind(image, near, max_side)


def face_or_centre(size: int, margin: float = MARGIN, max_side: int | None = PREPARE_MAX_SIDE):
    """A preparation transform on a list of images: each -> (crop of its largest face, or its
    centre square and True when no face was found)."""

    def transform(images: Sequence[np.ndarray]) -> list[tuple[np.ndarray, bool]]:
        found = detect_faces(images, max_side)
        return [(crop_box(image, faces.boxes[0], size, margin), False) if len(faces)
                else (centre_crop(image, size), True) for image, faces in zip(images, found)]

    return transform
