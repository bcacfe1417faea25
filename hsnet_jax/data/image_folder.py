"""`image_folder`: any labelled images laid out as `<root>/<split>/<class>/*.{jpg,jpeg,png}`.

Classes are the class folder names (sorted, lower case); splits are taken as they are on disk
(`train` is required, `validation` and `test` are optional). Images are resized to 100x100
(config `default`) or 224x224 (config `224`). One prepared image_folder lives in each data_dir:
prepare different folders into different `--data_dir`s.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import SPLITS, Examples, ManualBuilder, Records, one_line
from hsnet_jax.data.errors import LayoutError


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    image_size: int = 100


class ImageFolder(ManualBuilder, skip_registration=True):
    """Images in <root>/<split>/<class>/ folders, splits as on disk."""

    BUILDER_CONFIGS = [FolderConfig(name="default", description="resized to 100x100"),
                       FolderConfig(name="224", description="resized to 224x224", image_size=224)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = """
    Point --manual_dir at a folder <root> holding <root>/train/<class>/*.jpg (and optionally
    <root>/validation/<class>/ and <root>/test/<class>/), one folder per class, image files PIL can read.
    """

    @property
    def IMAGE_SIZE(self) -> int:  # noqa: N802 -- the name the base class reads
        return self.builder_config.image_size

    def _records(self, root: str) -> Records:
        help_text = one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        splits = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        unknown = [d for d in splits if d not in SPLITS]
        if unknown or "train" not in splits:
            raise LayoutError(f"{root} must hold train/ (and optionally validation/, test/) folders, "
                              f"found {', '.join(splits) or 'none'}. {help_text}")
        classes = sorted({c.lower() for s in splits for c in os.listdir(os.path.join(root, s))
                          if os.path.isdir(os.path.join(root, s, c))})
        if not classes:
            raise LayoutError(f"no class folders under {os.path.join(root, 'train')}. {help_text}")
        self.info.features["label"].names = classes
        records = Records([], [], {"file_name": []}, [])
        stray = []
        # Every non-hidden file counts: one that is not an image stops preparation as undecodable.
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs if not f.startswith("."))
        for path in files:
            parts = os.path.relpath(path, root).split(os.sep)
            if len(parts) != 3:
                stray.append(path)
                continue
            records.paths.append(path)
            records.labels.append(classes.index(parts[1].lower()))
            records.metadata["file_name"].append("/".join(parts))  # unique within the dataset
            records.splits.append(parts[0])
        if stray:
            raise LayoutError(f"{len(stray)} file(s) not in <root>/<split>/<class>/: {'; '.join(stray)}")
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return {name: np.flatnonzero(examples.metadata["split"] == name) for name in SPLITS}
