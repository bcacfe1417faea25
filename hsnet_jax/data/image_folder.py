"""`image_folder`: any labelled images laid out as `<root>/<split>/<class>/*.{jpg,jpeg,png}`.

Classes are the class folder names (sorted, lower case; hidden folders and `__MACOSX` are
ignored, see scan.py); splits are taken as they are on disk
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
from hsnet_jax.data.scan import is_ignored, scan


@dataclasses.dataclass
class FolderConfig(tfds.core.BuilderConfig):
    image_size: int = 100


class ImageFolder(ManualBuilder, skip_registration=True):
    """Images in <root>/<split>/<class>/ folders, splits as on disk."""

    TITLE = "image_folder"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.1.0": "Hidden folders (.ipynb_checkpoints) and __MACOSX/ are no longer classes or splits; "
                 "an empty train/ is an error, not an empty dataset.",
        "1.0.0": "Initial release.",
    }
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
        splits = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)) and not is_ignored(d))
        unknown = [d for d in splits if d not in SPLITS]
        if unknown or "train" not in splits:
            raise LayoutError(f"{root} must hold train/ (and optionally validation/, test/) folders, "
                              f"found {', '.join(splits) or 'none'}. {help_text}")
        classes = sorted({c.lower() for s in splits for c in os.listdir(os.path.join(root, s))
                          if os.path.isdir(os.path.join(root, s, c)) and not is_ignored(c)})
        if not classes:
            raise LayoutError(f"no class folders under {os.path.join(root, 'train')}. {help_text}")
        self.info.features["label"].names = classes
        # Every file counts: one that is not an image stops preparation as undecodable.
        found = scan(root, images_only=False)
        records = Records([], [], {"file_name": []}, [], ignored=found.ignored)
        for path in found.files:
            parts = os.path.relpath(path, root).split(os.sep)
            if len(parts) != 3:
                records.unparseable.append((path, "not in <root>/<split>/<class>/"))
                continue
            records.add(path, classes.index(parts[1].lower()), ("/".join(parts),), parts[0])  # unique name
        return records

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return {name: np.flatnonzero(examples.metadata["split"] == name) for name in SPLITS}
