"""`ferg_db`: the Facial Expression Research Group 2D database, 6 cartoon characters, 256x256."""

from __future__ import annotations

import os

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import Examples, ManualBuilder, Records, holdout_split
from hsnet_jax.data.scan import scan

ROOT_NAME = "FERG_DB_256"
HOLDOUTS = (("test", 0.1), ("validation", 1 / 9))  # 80 / 10 / 10


class FergDb(ManualBuilder, skip_registration=True):
    """FERG-DB: 80 / 10 / 10 train / validation / test, seeded, stratified; the original 256x256."""

    TITLE = "FERG-DB"
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
        images = os.path.join(root, ROOT_NAME) if os.path.isdir(os.path.join(root, ROOT_NAME)) else root
        found = scan(root)  # from the manual root: a macOS archive's __MACOSX/ sits beside FERG_DB_256/
        records = Records([], [], {"file_name": [], "character": []}, ignored=found.ignored)
        for path in found.files:
            parts = os.path.relpath(path, images).split(os.sep)
            if len(parts) != 3 or not parts[1].startswith(parts[0] + "_"):
                records.unparseable.append((path, f"not in <character>/<character>_<expression>/ "
                                                  f"(e.g. {ROOT_NAME}/aia/aia_anger/aia_anger_1.png)"))
                continue
            character, expression = parts[0], parts[1][len(parts[0]) + 1:]
            if expression not in self.CLASS_NAMES:
                records.unparseable.append(
                    (path, f"unknown expression {expression!r} (expected one of {', '.join(self.CLASS_NAMES)})"))
                continue
            records.add(path, self.CLASS_NAMES.index(expression), (os.path.basename(path), character))
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return holdout_split(examples, HOLDOUTS, self.SEED)
