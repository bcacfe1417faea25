"""`ferg_db`: the Facial Expression Research Group 2D database, 6 cartoon characters, 256x256."""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import Examples, ManualBuilder, Records, check_labels, find_images, holdout_split, one_line
from hsnet_jax.data.errors import LayoutError

ROOT_NAME = "FERG_DB_256"
HOLDOUTS = (("test", 0.1), ("validation", 1 / 9))  # 80 / 10 / 10


class FergDb(ManualBuilder, skip_registration=True):
    """FERG-DB: 80 / 10 / 10 train / validation / test, seeded, stratified; the original 256x256."""

    CLASS_NAMES = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")
    IMAGE_SIZE = 256
    IMAGE_ENCODING = tfds.features.Encoding.ZLIB  # flat backgrounds: ~11 GB raw, far less compressed
    METADATA = ("character",)
    HOMEPAGE = "https://grail.cs.washington.edu/projects/deepexpr/ferg-db.html"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request FERG-DB from {HOMEPAGE} and unpack it so that --manual_dir is (or contains)
    {ROOT_NAME}/ with <character>/<character>_<expression>/<character>_<expression>_<n>.png,
    e.g. {ROOT_NAME}/aia/aia_anger/aia_anger_1.png; expressions: anger disgust fear joy
    neutral sadness surprise.
    """

    def _records(self, root: str) -> Records:
        if os.path.isdir(os.path.join(root, ROOT_NAME)):
            root = os.path.join(root, ROOT_NAME)
        records = Records([], [], {"file_name": [], "character": []})
        problems = []
        for path in find_images(root):
            parts = os.path.relpath(path, root).split(os.sep)
            if len(parts) != 3 or not parts[1].startswith(parts[0] + "_"):
                problems.append(f"{path}: not in <character>/<character>_<expression>/ "
                                f"(e.g. {ROOT_NAME}/aia/aia_anger/aia_anger_1.png)")
                continue
            character, expression = parts[0], parts[1][len(parts[0]) + 1:]
            if expression not in self.CLASS_NAMES:
                problems.append(f"{path}: unknown expression {expression!r} (expected one of {', '.join(self.CLASS_NAMES)})")
                continue
            records.paths.append(path)
            records.labels.append(self.CLASS_NAMES.index(expression))
            records.metadata["file_name"].append(os.path.basename(path))
            records.metadata["character"].append(character)
        check_labels(problems, "FERG-DB")
        if not records.paths:
            raise LayoutError(f"no FERG-DB images found under {root}. {one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return holdout_split(examples, HOLDOUTS, self.SEED)
