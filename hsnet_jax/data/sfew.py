"""`sfew`: Static Facial Expressions in the Wild 2.0 (frames of films), its aligned faces, 7 expressions."""

from __future__ import annotations

import os

import numpy as np

from hsnet_jax.data.builder import Examples, ManualBuilder, Records, carve_validation, one_line, require_dir
from hsnet_jax.data.scan import scan

# The download's folder -> (its aligned faces' folder, our split). Val is the test split: the
# labels of SFEW's own test set were never published.
SETS = {"Train": ("Train_Aligned_Faces", "train"), "Val": ("Val_Aligned_Faces", "test")}
EMOTIONS = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")


class Sfew(ManualBuilder, skip_registration=True):
    """SFEW 2.0: Train (validation = 10% of it, stratified) / Val as test; aligned faces resized to 128."""

    TITLE = "SFEW"
    CLASS_NAMES = tuple(e.lower() for e in EMOTIONS)
    IMAGE_SIZE = 128
    HOMEPAGE = "https://users.cecs.anu.edu.au/~few_group/AFEW.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request SFEW 2.0 from {HOMEPAGE} and unpack it so that --manual_dir holds
    Train/Train_Aligned_Faces/<Emotion>/*.png and Val/Val_Aligned_Faces/<Emotion>/*.png
    (Emotion: {' '.join(EMOTIONS)}).
    """

    def _records(self, root: str) -> Records:
        for folder, (faces, _) in SETS.items():
            require_dir(os.path.join(root, folder, faces), f"SFEW {folder} aligned faces",
                        one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS))
        found = scan(root)
        records = Records([], [], {"file_name": []}, [], ignored=found.ignored)
        for path in found.files:
            parts = os.path.relpath(path, root).split(os.sep)
            if len(parts) != 4 or parts[0] not in SETS or parts[1] != SETS[parts[0]][0]:
                records.unparseable.append((path, "not in Train/Train_Aligned_Faces/<Emotion>/ or Val/..."))
            elif parts[2] not in EMOTIONS:
                records.unparseable.append((path, f"unknown emotion folder {parts[2]!r} "
                                                  f"(expected {' '.join(EMOTIONS)})"))
            else:
                records.add(path, EMOTIONS.index(parts[2]), ("/".join((parts[0], parts[2], parts[3])),),
                            SETS[parts[0]][1])
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return carve_validation(examples, self.SEED)
