"""The TFDS builder that every dataset of this package derives from.

Storage: the image is a fixed-size uint8 `tfds.features.Tensor` stored as raw bytes
(`Encoding.BYTES`) in `array_record` files. Images are decoded once at preparation; reading a
split back is a memcpy per example (no JPEG decoding in the training loop, no TensorFlow),
and writing avoids TFDS's per-pixel int64 lists. Each dataset fixes its stored size (RAF-DB
100, RaFD 100 and KDEF 256 face crops, FERG-DB 256; FERG-DB uses zlib since its backgrounds
are flat).

A file-based subclass says where its files are and what they mean (`_records`) and how to
split (`_split`); the base decodes, reports bad files, records the counts of skipped images
in the dataset's metadata, and writes the splits.

Splits depend on file names only: records are ordered by file name (not by path) before
splitting, so the same files give the same splits in any folder layout, and a file name found
in two places is an error. A preparation that fails, or would leave nothing to train on,
writes nothing: it stops before TFDS renames its `incomplete.*` folder into the dataset
folder, and TFDS removes that folder on the way out.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import os
import re
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.errors import LabelError, LayoutError
from hsnet_jax.data.reading import Transform, read_images
from hsnet_jax.data.scan import scan
from hsnet_jax.data.splits import Holdouts, stratified_split, subject_split

SPLITS = ("train", "validation", "test")


@dataclasses.dataclass
class Records:
    """What a manual download holds: one entry per image, before decoding."""

    paths: list[str]
    labels: list[int]
    metadata: dict[str, list[Any]]  # feature name -> one value per image; has "file_name"
    splits: list[str] | None = None  # the split each image is in, where the database says so
    # (path, why) of files named outside the database's scheme: skipped with --skip_unparseable
    unparseable: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    ignored: list[str] = dataclasses.field(default_factory=list)  # hidden and macOS entries (see scan.py)

    def add(self, path: str, label: int, metadata: Sequence[Any], split: str | None = None) -> None:
        """Appends one image; `metadata` in the order of the `metadata` dict's keys."""
        self.paths.append(path)
        self.labels.append(label)
        for values, value in zip(self.metadata.values(), metadata):
            values.append(value)
        if split is not None:
            self.splits.append(split)

    def sorted_by_file_name(self) -> "Records":
        """The same records ordered by file name, so that splits do not depend on folders."""
        order = sorted(range(len(self.paths)), key=lambda i: self.metadata["file_name"][i])
        return dataclasses.replace(
            self, paths=[self.paths[i] for i in order], labels=[self.labels[i] for i in order],
            metadata={k: [v[i] for i in order] for k, v in self.metadata.items()},
            splits=None if self.splits is None else [self.splits[i] for i in order])


@dataclasses.dataclass
class Examples:
    """Decoded images with their labels and metadata, all aligned on the first axis."""

    images: np.ndarray
    labels: np.ndarray
    metadata: dict[str, np.ndarray]


class ExpressionBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of all datasets: image (uint8, fixed size), label (ClassLabel), metadata (text)."""

    VERSION = tfds.core.Version("1.0.0")
    CLASS_NAMES: tuple[str, ...] = ()
    IMAGE_SIZE: int = 100
    IMAGE_ENCODING = tfds.features.Encoding.BYTES
    METADATA: tuple[str, ...] = ()  # text features besides "file_name"
    HOMEPAGE = ""
    SEED = 0  # every seeded split of this package uses it

    def __init__(self, *, skip_corrupt: bool = False, skip_unparseable: bool = False, **kwargs):
        self.skip_corrupt = skip_corrupt
        self.skip_unparseable = skip_unparseable
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "image": tfds.features.Tensor(shape=(self.IMAGE_SIZE, self.IMAGE_SIZE, 3), dtype=np.uint8,
                                          encoding=self.IMAGE_ENCODING),
            # Without CLASS_NAMES (image_folder) the names are set when the files are scanned.
            "label": tfds.features.ClassLabel(names=list(self.CLASS_NAMES)) if self.CLASS_NAMES
            else tfds.features.ClassLabel(),
            "file_name": tfds.features.Text(),
        }
        features.update({name: tfds.features.Text() for name in self.METADATA})
        return tfds.core.DatasetInfo(
            builder=self,
            description=(self.__doc__ or "").strip(),
            features=tfds.features.FeaturesDict(features),
            homepage=self.HOMEPAGE,
            metadata=tfds.core.MetadataDict(),
        )

    def _count(self, labels_per_split: dict[str, np.ndarray]) -> None:
        """Stores images per split and class in the metadata (the prepare summary's table)."""
        n = self.info.features["label"].num_classes
        self.info.metadata["class_counts"] = {
            split: np.bincount(labels, minlength=n).tolist() for split, labels in labels_per_split.items()}

    def _note(self, key: str, files: Sequence[str]) -> None:
        """Records images that were skipped or handled by a fallback, for the summary."""
        self.info.metadata[key] = sorted(files)

    def _generate_examples(self, examples: Examples,
                           indices: Sequence[int] | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yields (file name, example) for `indices` (default all) without copying the images."""
        names = ("file_name",) + self.METADATA
        for i in range(len(examples.labels)) if indices is None else indices:
            example = {"image": examples.images[i], "label": int(examples.labels[i])}
            example.update({k: str(examples.metadata[k][i]) for k in names})
            yield example["file_name"], example


class ManualBuilder(ExpressionBuilder, skip_registration=True):
    """A database the user downloads by hand and unpacks into `manual_dir`."""

    TITLE: str  # the database's name in messages

    @abc.abstractmethod
    def _records(self, root: str) -> Records:
        """Scans the manual download at `root` (checking its layout and labels)."""

    @abc.abstractmethod
    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        """Split name -> indices into the decoded examples."""

    def _transform(self) -> Transform | None:
        """A per-image transform after decoding (the face crop of RaFD and KDEF; flags = no face)."""
        return None

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = os.fspath(dl_manager.manual_dir)
        records = self._checked_records(root)
        images, kept, skipped, no_face = read_images(
            records.paths, self.IMAGE_SIZE, transform=self._transform(), skip_corrupt=self.skip_corrupt,
            desc=f"{self.name}: decoding")
        if not len(kept):
            raise LayoutError(f"all {len(skipped)} {self.TITLE} images under {root} were skipped as undecodable "
                              "(--skip_corrupt): nothing left to prepare")
        self._note("skipped_corrupt", [os.path.relpath(p, root) for p in skipped])
        self._note("no_face", [os.path.relpath(p, root) for p in no_face])
        metadata = {k: np.asarray(v, dtype=object)[kept] for k, v in records.metadata.items()}
        if records.splits is not None:
            metadata["split"] = np.asarray(records.splits, dtype=object)[kept]
        examples = Examples(images, np.asarray(records.labels, np.int64)[kept], metadata)
        parts = {name: idx for name, idx in self._split(examples).items() if len(idx)}
        if "train" not in parts:
            kept_counts = ", ".join(f"{name} {len(idx)}" for name, idx in parts.items())
            raise LayoutError(
                f"no {self.TITLE} images left for the train split under {root} (kept: {kept_counts}; "
                f"skipped as undecodable: {len(skipped)}). {one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        self._count({name: examples.labels[idx] for name, idx in parts.items()})
        return {name: self._generate_examples(examples, parts[name]) for name in SPLITS if name in parts}

    def _checked_records(self, root: str) -> Records:
        """`_records` with unparseable names skipped (or an error), ignored entries noted, file
        names checked to be unique, and ordered by file name."""
        records = self._records(root)
        bad = records.unparseable
        if bad and not self.skip_unparseable:
            raise LabelError(
                f"{len(bad)} file name(s) outside the {self.TITLE} naming scheme (rerun with "
                f"--skip_unparseable to skip and list them): " + "; ".join(f"{p}: {why}" for p, why in bad))
        self._note("skipped_unparseable", [os.path.relpath(p, root) for p, _ in bad])
        self._note("ignored", records.ignored)
        places = collections.defaultdict(list)
        for name, path in zip(records.metadata["file_name"], records.paths):
            places[name].append(path)
        check_labels([f"{name} is both {' and '.join(paths)}" for name, paths in sorted(places.items())
                      if len(paths) > 1], f"{self.TITLE} (file names must be unique: splits are made from them)")
        if not records.paths:
            skipped = f" ({len(bad)} skipped as unparseable)" if bad else ""
            raise LayoutError(f"no {self.TITLE} images found under {root}{skipped}. "
                              f"{one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        return records.sorted_by_file_name()


@dataclasses.dataclass
class PoseConfig(tfds.core.BuilderConfig):
    """RaFD / KDEF: which camera angles to keep and whether splits are subject-disjoint."""

    angles: tuple[str, ...] = ()  # empty: all angles (the default, as in the paper)
    subject_disjoint: bool = False


def pose_configs(frontal: str) -> list[PoseConfig]:
    """default, subject_disjoint, frontal, frontal_subject_disjoint."""
    return [
        PoseConfig(name="default", description="all angles, stratified splits"),
        PoseConfig(name="subject_disjoint", description="all angles, no subject in two splits",
                   subject_disjoint=True),
        PoseConfig(name="frontal", description=f"angle {frontal} only, stratified splits", angles=(frontal,)),
        PoseConfig(name="frontal_subject_disjoint", description=f"angle {frontal} only, subject-disjoint",
                   angles=(frontal,), subject_disjoint=True),
    ]


class PoseBuilder(ManualBuilder, skip_registration=True):
    """RaFD and KDEF: posed photographs named by a fixed pattern, cropped to the face by MTCNN
    and split by `HOLDOUTS` (stratified, or subject-disjoint with the config of that name)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.1.0": "Splits from file names only (records ordered by file name, not by path): the same "
                 "files give the same splits in any folder layout. Trees in subfolders split differently "
                 "from 1.0.0; flat trees (RaFD's official layout) and KDEF's official folders do not.",
        "1.0.0": "Records ordered by full path.",
    }
    FILE_PATTERN: re.Pattern
    EXAMPLE_FILE: str  # an official file name, shown when a name does not match
    HOLDOUTS: Holdouts

    @abc.abstractmethod
    def _parse(self, match: re.Match) -> tuple[str, str, tuple[str, ...]]:
        """(class name, angle, METADATA values) of a matching file name; ValueError says why
        its label is unusable."""

    def _records(self, root: str) -> Records:
        found = scan(root)
        records = Records([], [], {k: [] for k in ("file_name",) + self.METADATA}, ignored=found.ignored)
        other_angles = collections.Counter()
        for path in found.files:
            name = os.path.basename(path)
            match = self.FILE_PATTERN.fullmatch(name)
            if not match:
                records.unparseable.append((path, f"not a {self.TITLE} file name ({self.EXAMPLE_FILE})"))
                continue
            try:
                label, angle, metadata = self._parse(match)
            except ValueError as e:
                records.unparseable.append((path, str(e)))
                continue
            if self.builder_config.angles and angle not in self.builder_config.angles:
                other_angles[angle] += 1
                continue
            records.add(path, self.CLASS_NAMES.index(label), (name, *metadata))
        if not records.paths and other_angles:
            raise LayoutError(
                f"{sum(other_angles.values())} {self.TITLE} images found under {root}, but none at angle "
                f"{', '.join(self.builder_config.angles)} (config {self.builder_config.name!r}); angles found: "
                f"{', '.join(f'{a} ({n})' for a, n in sorted(other_angles.items()))}")
        return records

    def _transform(self) -> Transform:
        from hsnet_jax.faces.crops import face_or_centre  # MTCNN: only RaFD and KDEF need it

        return face_or_centre(self.IMAGE_SIZE)

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return holdout_split(examples, self.HOLDOUTS, self.SEED, self.builder_config.subject_disjoint)


def holdout_split(examples: Examples, holdouts: Holdouts, seed: int,
                  subject_disjoint: bool = False) -> dict[str, np.ndarray]:
    """Seeded splits stratified by class, or by subject when `subject_disjoint`."""
    if subject_disjoint:
        return subject_split(examples.metadata["subject"], holdouts, seed)
    return stratified_split(examples.labels, holdouts, seed)


def check_labels(problems: list[str], what: str) -> None:
    """Raises one LabelError listing every problem found in a database's labels."""
    if problems:
        raise LabelError(f"{len(problems)} label problem(s) in {what}: " + "; ".join(problems))


def require_dir(path: str, what: str, instructions: str) -> None:
    """Raises LayoutError naming `path`, what it should hold and where to get it."""
    if not os.path.isdir(path):
        raise LayoutError(f"{what} not found: expected directory {path}. {instructions}")


def one_line(text: str) -> str:
    """Collapses a multi-line instruction text into one line for an error message."""
    return " ".join(text.split())
