"""`synthetic`: the generated expression set that needs no download (what `make demo` trains on).

See `synthetic_faces.py` for how faces are drawn. Configs: `default` has 500 / 100 / 100
images per class (3,500 / 700 / 700); `small` has 100 / 20 / 20 for quick smoke runs.
Both are fixed by the seed 0: preparing twice gives the same images.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import SPLITS, Examples, ExpressionBuilder
from hsnet_jax.data.expressions import CANONICAL_EXPRESSIONS
from hsnet_jax.data.synthetic_faces import IMAGE_SIZE, draw_faces


@dataclasses.dataclass
class SyntheticConfig(tfds.core.BuilderConfig):
    per_class: tuple[int, int, int] = (500, 100, 100)  # train, validation, test


class Synthetic(ExpressionBuilder, skip_registration=True):
    """Procedurally drawn faces in RAF-DB's 7 classes; only the expression carries the label."""

    VERSION = tfds.core.Version("1.2.0")
    RELEASE_NOTES = {
        "1.0.0": "First drawing of the faces.",
        "1.1.0": "Bolder cues (smiling eyes, teeth, forehead lines, thicker brows), more position jitter.",
        "1.2.0": "Larger faces, thicker lines, more jitter; fear's small irises, anger's clenched teeth "
                 "and brow creases, sadness's tear.",
    }
    CLASS_NAMES = CANONICAL_EXPRESSIONS
    IMAGE_SIZE = IMAGE_SIZE
    BUILDER_CONFIGS = [
        SyntheticConfig(name="default", description="3,500 / 700 / 700 images"),
        SyntheticConfig(name="small", description="700 / 140 / 140 images", per_class=(100, 20, 20)),
    ]

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        k = len(self.CLASS_NAMES)
        sizes = {name: n * k for name, n in zip(SPLITS, self.builder_config.per_class)}
        self._count({name: np.arange(size) % k for name, size in sizes.items()})
        return {name: self._generate_split(i, sizes[name]) for i, name in enumerate(SPLITS)}

    def _generate_split(self, split_index: int, count: int, chunk: int = 100):
        """Draws lazily, in chunks, so TFDS's progress bar shows the drawing."""
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            images, labels = draw_faces(self.SEED, split_index, n, start)
            names = [f"{SPLITS[split_index]}_{i:05d}.png" for i in range(start, start + n)]
            yield from self._generate_examples(Examples(images, labels, {"file_name": np.asarray(names, dtype=object)}))
