"""Reading a prepared split into host memory (uint8 images, int32 labels, metadata arrays)."""

from __future__ import annotations

import dataclasses
import shlex

import numpy as np

from hsnet_jax.data.errors import DatasetNotPreparedError, MissingSplitError
from hsnet_jax.data.registry import get_builder


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, H, W, 3]
    labels: np.ndarray  # int32 [N]
    class_names: tuple[str, ...]
    metadata: dict[str, np.ndarray]  # e.g. file_name, subject, angle: one entry per image

    def __len__(self) -> int:
        return len(self.labels)


def prepare_command(name: str, data_dir: str | None) -> str:
    """The shell command that prepares `name` (what a DatasetNotPreparedError tells the user)."""
    command = ["python", "-m", "hsnet_jax.data.prepare", "--dataset", name]
    if not name.startswith("synthetic"):
        command += ["--manual_dir", "PATH"]
    if data_dir:
        command += ["--data_dir", data_dir]
    return shlex.join(command).replace("PATH", "PATH_TO_DOWNLOAD")


def load_split(name: str, split: str, data_dir: str | None = None, chunk: int = 2048) -> Split:
    """Reads split `split` of prepared dataset `name` ("rafd/subject_disjoint" selects a config)."""
    builder = get_builder(name, data_dir)
    if not builder.is_prepared():
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared in {builder.data_dir}; prepare it with: "
            f"{prepare_command(name, data_dir)}")
    if split not in builder.info.splits:
        raise MissingSplitError(
            f"dataset {name!r} has no split {split!r}; splits: {', '.join(builder.info.splits)}")
    source = builder.as_data_source(split)
    n = len(source)
    features = builder.info.features
    shape = features["image"].shape
    images = np.empty((n,) + tuple(shape), np.uint8)
    labels = np.empty((n,), np.int32)
    text_keys = [k for k in features.keys() if k not in ("image", "label")]
    metadata = {k: np.empty((n,), dtype=object) for k in text_keys}
    for start in range(0, n, chunk):  # in chunks: the decoded dicts never hold the whole split
        rows = source.__getitems__(range(start, min(n, start + chunk)))
        for j, row in enumerate(rows, start):
            images[j] = row["image"]
            labels[j] = row["label"]
            for k in text_keys:
                value = row[k]
                metadata[k][j] = value.decode() if isinstance(value, bytes) else str(value)
    metadata = {k: v.astype(str) for k, v in metadata.items()}
    return Split(images, labels, tuple(features["label"].names), metadata)
