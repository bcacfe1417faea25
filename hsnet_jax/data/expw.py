"""`expw`: the Expression in-the-Wild database (Zhang et al.), faces cropped from their boxes in web photos.

`label/label.lst` lists every face: `image_name face_id_in_image face_box_top face_box_left
face_box_right face_box_bottom face_box_cofidence expression_label` (sic), labels 0 angry ..
6 neutral as in FER2013. There is no official split: photos (not faces, so that the faces of one
photo stay together) are held out seeded, 80 / 10 / 10. A face's `file_name` is
`<image_name>#<face_id>`.
"""

from __future__ import annotations

import os

import numpy as np

from hsnet_jax.data.boxes import BoxBuilder
from hsnet_jax.data.builder import Examples, Records, check_labels, one_line
from hsnet_jax.data.errors import LayoutError
from hsnet_jax.data.splits import subject_split

LABEL_FILE = os.path.join("label", "label.lst")
IMAGE_DIR = os.path.join("image", "origin")
HOLDOUTS = (("test", 0.1), ("validation", 1 / 9))


class Expw(BoxBuilder, skip_registration=True):
    """ExpW: every labelled face, 80 / 10 / 10 by photo (seeded)."""

    TITLE = "ExpW"
    CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    IMAGE_SIZE = 112
    METADATA = ("face_id", "confidence")
    HOMEPAGE = "https://mmlab.ie.cuhk.edu.hk/projects/socialrelation/index.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download ExpW from {HOMEPAGE} and unpack it so that --manual_dir holds {IMAGE_DIR}/*.jpg and
    {LABEL_FILE} (lines "angry_actor_104.jpg 0 28 113 226 141 22.9 0": image, face id, box top,
    left, right, bottom, confidence, label 0-6).
    """

    def _records(self, root: str) -> Records:
        label_file, images = os.path.join(root, LABEL_FILE), os.path.join(root, IMAGE_DIR)
        if not os.path.isfile(label_file) or not os.path.isdir(images):
            raise LayoutError(f"ExpW needs {label_file} and {images}/. {one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        records = Records([], [], {"file_name": [], "face_id": [], "confidence": [], "box": [], "photo": []})
        problems, first_line = [], {}
        with open(label_file, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                where, fields = f"{label_file}:{line_no}", line.split()
                if not fields:
                    continue
                if len(fields) != 8:
                    problems.append(f"{where}: {len(fields)} fields, expected 8 (image face_id top left right "
                                    "bottom confidence label)")
                    continue
                name, face_id, *box, confidence, label = fields
                try:
                    top, left, right, bottom = (float(v) for v in box)
                    float(confidence)
                    int(face_id)
                except ValueError as e:
                    problems.append(f"{where}: {e}")
                    continue
                face = f"{name}#{face_id}"
                if face in first_line:
                    problems.append(f"{where}: face {face_id} of {name} again (first at line {first_line[face]})")
                    continue
                first_line[face] = line_no
                if label not in {str(c) for c in range(7)}:
                    problems.append(f"{where}: expression label {label!r} out of range (0..6)")
                elif right <= left or bottom <= top:
                    problems.append(f"{where}: empty face box (top {top:g}, left {left:g}, right {right:g}, "
                                    f"bottom {bottom:g})")
                elif not os.path.isfile(os.path.join(images, name)):
                    problems.append(f"{where}: no image {os.path.join(images, name)}")
                else:
                    records.add(os.path.join(images, name), int(label),
                                (face, face_id, confidence, (left, top, right, bottom), name))
        check_labels(problems, "ExpW")
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return subject_split(examples.metadata["photo"], HOLDOUTS, self.SEED)
