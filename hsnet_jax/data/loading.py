"""Reading a prepared split: opened for random access (`open_split`) or into host memory
(`load_split`: uint8 images, int32 labels, metadata arrays)."""

from __future__ import annotations

import dataclasses
import math
import shlex
from typing import Any

import numpy as np

from hsnet_jax.data.errors import DatasetNotPreparedError, MissingSplitError, NoSubjectsError
from hsnet_jax.data.registry import get_builder, no_variant_folder_warning


@dataclasses.dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 [N, H, W, 3]
    labels: np.ndarray  # int32 [N]
    class_names: tuple[str, ...]
    metadata: dict[str, np.ndarray]  # e.g. file_name, subject, angle: one entry per image
    fingerprint: str = ""  # the prepared split's (data/fingerprint.py); "" for generated data or a part

    def __len__(self) -> int:
        return len(self.labels)

    def first(self, n: int) -> "Split":
        """Only the first `n` examples (config.max_eval_examples, for smoke runs)."""
        return self.select(np.arange(min(n, len(self))))

    def select(self, rows: np.ndarray) -> "Split":
        """The examples at `rows` (a fold's part of a database); the whole split keeps its fingerprint."""
        rows = np.asarray(rows, np.int64)
        whole = np.array_equal(rows, np.arange(len(self)))
        return dataclasses.replace(self, images=self.images[rows], labels=self.labels[rows],
                                   metadata={k: v[rows] for k, v in self.metadata.items()},
                                   fingerprint=self.fingerprint if whole else "")

    @property
    def nbytes(self) -> int:
        return self.images.nbytes

    def load(self) -> "Split":
        """Already in memory (a Split trains wherever a SplitSource does, but never streamed)."""
        return self

    def columns(self, keys: tuple[str, ...] = ()) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(labels, {key: metadata}) without the images."""
        return self.labels, {k: self.metadata[k] for k in keys}


def concatenate(splits: list[Split]) -> Split:
    """One Split of several of the same database (a fold protocol re-splits all its examples)."""
    keys = set.intersection(*(set(s.metadata) for s in splits))
    return Split(np.concatenate([s.images for s in splits]), np.concatenate([s.labels for s in splits]),
                 splits[0].class_names, {k: np.concatenate([s.metadata[k] for s in splits]) for k in sorted(keys)})


def prepare_command(name: str, data_dir: str | None) -> str:
    """The shell command that prepares `name` (what a DatasetNotPreparedError tells the user)."""
    command = ["python", "-m", "hsnet_jax.prepare", "--dataset", name]
    if not name.startswith("synthetic"):
        command += ["--manual_dir", "PATH"]
    if data_dir:
        command += ["--data_dir", data_dir]
    return shlex.join(command).replace("PATH", "PATH_TO_DOWNLOAD")


@dataclasses.dataclass(frozen=True)
class SplitSource:
    """A prepared split opened, not read: its size, shape and classes, and random access to its
    rows. The `stream` data placement trains from it without ever holding the whole split."""

    source: Any  # TFDS ArrayRecordDataSource: one decoded example dict per row
    class_names: tuple[str, ...]
    image_shape: tuple[int, ...]
    text_keys: tuple[str, ...]
    num_examples: int
    fingerprint: str = ""  # the prepared split's (data/fingerprint.py); "" for generated data or a part

    def __len__(self) -> int:
        return self.num_examples

    @property
    def nbytes(self) -> int:
        """What the uint8 images occupy once loaded (labels and metadata are negligible)."""
        return self.num_examples * math.prod(self.image_shape)

    def first(self, n: int) -> "SplitSource":
        """Only the first `n` rows (config.max_*_examples)."""
        return dataclasses.replace(self, num_examples=min(n, self.num_examples),
                                   fingerprint=self.fingerprint if n >= self.num_examples else "")

    def load(self, chunk: int = 2048) -> Split:
        """The whole split in host memory."""
        images = np.empty((self.num_examples,) + self.image_shape, np.uint8)
        labels, metadata = self._read(self.text_keys, images, chunk)
        return Split(images, labels, self.class_names, metadata, self.fingerprint)

    def columns(self, keys: tuple[str, ...] = (), chunk: int = 2048) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(labels, {key: metadata}) without keeping the images (one read of the split: the
        training loop's class counts and soft targets, whatever the data placement)."""
        return self._read(keys, None, chunk)

    def _read(self, keys, images: np.ndarray | None, chunk: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        n = self.num_examples
        labels = np.empty((n,), np.int32)
        metadata = {k: np.empty((n,), dtype=object) for k in keys}
        for start in range(0, n, chunk):  # in chunks: the decoded dicts never hold the whole split
            rows = self.source.__getitems__(range(start, min(n, start + chunk)))
            for j, row in enumerate(rows, start):
                if images is not None:
                    images[j] = row["image"]
                labels[j] = row["label"]
                for k in keys:
                    value = row[k]
                    metadata[k][j] = value.decode() if isinstance(value, bytes) else str(value)
        return labels, {k: v.astype(str) for k, v in metadata.items()}


def open_split(name: str, split: str, data_dir: str | None = None) -> SplitSource:
    """Opens split `split` of prepared dataset `name` ("rafd/subject_disjoint" selects a
    config) for random access; reads no images."""
    builder = get_builder(name, data_dir)
    with no_variant_folder_warning():
        prepared = builder.is_prepared()
    if not prepared:
        raise DatasetNotPreparedError(
            f"dataset {name!r} is not prepared in {builder.data_dir}; prepare it with: "
            f"{prepare_command(name, data_dir)}")
    if split not in builder.info.splits:
        raise MissingSplitError(
            f"dataset {name!r} has no split {split!r}; splits: {', '.join(builder.info.splits)}")
    source = builder.as_data_source(split)
    features = builder.info.features
    return SplitSource(source, tuple(features["label"].names), tuple(features["image"].shape),
                       tuple(k for k in features.keys() if k not in ("image", "label")), len(source),
                       (builder.info.metadata or {}).get("fingerprints", {}).get(split, ""))


def load_split(name: str, split: str, data_dir: str | None = None, chunk: int = 2048) -> Split:
    """Reads split `split` of prepared dataset `name` into host memory."""
    return open_split(name, split, data_dir).load(chunk)


def load_subjects(name: str, data_dir: str | None = None) -> Split:
    """Every example of prepared dataset `name`, all its splits together, for a protocol that
    splits by subject itself (`--folds`); a database whose examples name no subject is a
    one-line error, before any image is read."""
    if "subject" not in open_split(name, "train", data_dir).text_keys:
        raise NoSubjectsError(f"dataset {name!r} names no subject per example, so it has no subject-independent "
                              "folds; --folds needs one that does (ckplus, jaffe, kdef, rafd)")
    splits = sorted(get_builder(name, data_dir).info.splits)
    return concatenate([load_split(name, split, data_dir) for split in splits])
