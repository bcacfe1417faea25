"""The TFDS builder that every dataset of this package derives from.

Storage: the image is a fixed-size uint8 `tfds.features.Tensor` stored as raw bytes
(`Encoding.BYTES`) in `array_record` files. Images are decoded once at preparation; reading a
split back is a memcpy per example (no JPEG decoding in the training loop, no TensorFlow),
and writing avoids TFDS's per-pixel int64 lists. Each dataset fixes its stored size (RAF-DB
100, RaFD 100 and KDEF 256 face crops, FERG-DB 256; FERG-DB uses zlib since its backgrounds
are flat).

A file-based subclass says where its files are and what they mean (`_records`) and how to
split (`_split`); the base splits, then decodes and writes each split STREAM_CHUNK images at
a time (AffectNet's 287,651 faces never sit in memory at once), reports bad files, records
the counts of skipped and excluded images and each split's fingerprint (fingerprint.py) in
the dataset's metadata.

Splits depend on file names and labels only, never on pixels: they are made before
decoding, from records ordered by file name (not by path), so the same files give the same
splits in any folder layout, and a file name found in two places is an error. A
preparation that fails, or would leave nothing to train on, writes nothing: it stops before
TFDS renames its `incomplete.*` folder into the dataset folder (the checks that need every
image decoded run at the end of the last split, train), and TFDS removes that folder.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import os
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.errors import CorruptImageError, LabelError, LayoutError
from hsnet_jax.data.fingerprint import Fingerprint
from hsnet_jax.data.reading import Transform, open_regular, read_images
from hsnet_jax.runtime.progress import Progress
from hsnet_jax.data.splits import Holdouts, stratified_split, subject_split

SPLITS = ("train", "validation", "test")
STREAM_CHUNK = 256  # images decoded at a time: preparation never holds a whole split


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
    # why -> how many entries the database's protocol leaves out (AffectNet's "none", CK+'s unlabelled sequences)
    excluded: collections.Counter = dataclasses.field(default_factory=collections.Counter)

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
    """Decoded images with their labels and metadata, all aligned on the first axis (images None
    when splitting, which happens before decoding)."""

    images: np.ndarray | None
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


@dataclasses.dataclass
class _Run:
    """One preparation's state across its split generators."""

    root: str
    records: Records
    splits: int  # how many split generators there are
    bar: Progress
    reasons: dict[str, str] = dataclasses.field(default_factory=dict)  # undecodable path -> why
    no_face: list[str] = dataclasses.field(default_factory=list)
    labels: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # per finished split
    fingerprints: dict[str, str] = dataclasses.field(default_factory=dict)


class ManualBuilder(ExpressionBuilder, skip_registration=True):
    """A database the user downloads by hand and unpacks into `manual_dir`."""

    TITLE: str  # the database's name in messages
    DETECT_FACES = False  # True: stored as MTCNN face crops (RaFD, KDEF, CK+, JAFFE; see faces.py)

    @abc.abstractmethod
    def _records(self, root: str) -> Records:
        """Scans the manual download at `root` (checking its layout and labels)."""

    @abc.abstractmethod
    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        """Split name -> indices of the records (`examples.images` is None: splits are made
        from labels and metadata, before decoding)."""

    def _transform(self) -> Transform | None:
        """The MTCNN face crop (flags = no face) when DETECT_FACES; None: resized to IMAGE_SIZE."""
        if not self.DETECT_FACES:
            return None
        from hsnet_jax.faces.crops import face_or_centre  # MTCNN: only the databases that need it import JAX

        return face_or_centre(self.IMAGE_SIZE)

    def _source(self, records: Records, i: int) -> bytes:
        """The bytes record `i` was made from, for the fingerprint: its file as downloaded."""
        with open_regular(records.paths[i]) as f:
            return f.read()

    def _decode(self, records: Records, indices: np.ndarray, bar: Progress, reasons: dict[str, str]
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Records `indices` -> (images [K, S, S, 3], positions in `indices` of the K decoded,
        paths the transform flagged); undecodable paths go into `reasons` with why."""
        images, kept, _, flagged = read_images(
            [records.paths[i] for i in indices], self.IMAGE_SIZE, transform=self._transform(),
            skip_corrupt=True, bar=bar, reasons=reasons)
        return images, kept, flagged

    def _parts(self, records: Records) -> dict[str, np.ndarray]:
        """Split name -> indices of `records`, from labels and metadata alone: splits are made
        before decoding, so preparation can stream and a fingerprint needs no decoding."""
        metadata = {k: _column(v) for k, v in records.metadata.items()}
        if records.splits is not None:
            metadata["split"] = _column(records.splits)
        parts = self._split(Examples(None, np.asarray(records.labels, np.int64), metadata))
        return {name: idx for name, idx in parts.items() if len(idx)}

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        root = os.fspath(dl_manager.manual_dir)
        records = self._checked_records(root)
        parts = self._parts(records)
        if "train" not in parts:
            kept_counts = ", ".join(f"{name} {len(idx)}" for name, idx in parts.items())
            raise LayoutError(
                f"no {self.TITLE} images left for the train split under {root} (kept: {kept_counts}; "
                f"before decoding). {one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        self.info.metadata["excluded"] = dict(sorted(records.excluded.items()))
        run = _Run(root, records, len(parts), bar=Progress(sum(map(len, parts.values())),
                                                            f"{self.name}: decoding", "img"))
        return {name: self._stream(run, name, parts[name]) for name in SPLITS if name in parts}

    def _stream(self, run: "_Run", split: str, indices: np.ndarray) -> Iterator[tuple[str, dict[str, Any]]]:
        """Decodes and yields split `split` a chunk at a time, fingerprinting it as it goes."""
        records, names = run.records, ("file_name",) + self.METADATA
        class_names = self.info.features["label"].names
        fingerprint, labels = Fingerprint(), []
        for start in range(0, len(indices), STREAM_CHUNK):
            chunk = indices[start:start + STREAM_CHUNK]
            images, kept, flagged = self._decode(records, chunk, run.bar, run.reasons)
            run.no_face += flagged
            for image, i in zip(images, chunk[kept]):
                label = int(records.labels[i])
                example = {"image": image, "label": label}
                example.update({k: str(records.metadata[k][i]) for k in names})
                fingerprint.add(example["file_name"], class_names[label], self._source(records, i))
                labels.append(label)
                yield example["file_name"], example
        if not labels:  # TFDS cannot write an empty split
            self._stop_on_corrupt(run)
            raise LayoutError(f"all {len(indices)} {self.TITLE} images of the {split} split under {run.root} were "
                              "skipped as undecodable (--skip_corrupt): nothing left to prepare it from")
        run.labels[split], run.fingerprints[split] = np.asarray(labels, np.int64), fingerprint.hexdigest()
        if len(run.labels) == run.splits:
            self._finish(run)

    def _stop_on_corrupt(self, run: "_Run") -> None:
        """Raises one CorruptImageError listing every undecodable file so far, unless skip_corrupt."""
        if run.reasons and not self.skip_corrupt:
            raise CorruptImageError(
                f"{len(run.reasons)} image(s) cannot be decoded (rerun with --skip_corrupt to skip and count them): "
                + "; ".join(f"{path} ({run.reasons[path]})" for path in sorted(run.reasons)))

    def _finish(self, run: "_Run") -> None:
        """After the last split: stops on undecodable files (all listed), else records the
        counts, the skipped files and the fingerprints in the metadata."""
        run.bar.close()
        self._stop_on_corrupt(run)
        self._note("skipped_corrupt", [os.path.relpath(p, run.root) for p in run.reasons])
        self._note("no_face", [os.path.relpath(p, run.root) for p in run.no_face])
        self._count({name: run.labels[name] for name in SPLITS if name in run.labels})
        self.info.metadata["fingerprints"] = {name: run.fingerprints[name] for name in SPLITS if name in run.labels}

    def fingerprints(self, root: str) -> dict[str, str]:
        """Split -> fingerprint of the download at `root`, from the source bytes alone (no
        decoding: undecodable files count, see fingerprint.py)."""
        records = self._checked_records(root)
        parts = self._parts(records)
        class_names = self.info.features["label"].names
        out = {}
        for name in SPLITS:
            if name in parts:
                fingerprint = Fingerprint()
                with Progress(len(parts[name]), f"{self.name}: {name}", "img") as bar:
                    for i in parts[name]:
                        fingerprint.add(records.metadata["file_name"][i], class_names[records.labels[i]],
                                        self._source(records, i))
                        bar.update()
                out[name] = fingerprint.hexdigest()
        return out

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


def holdout_split(examples: Examples, holdouts: Holdouts, seed: int,
                  subject_disjoint: bool = False) -> dict[str, np.ndarray]:
    """Seeded splits stratified by class, or by subject when `subject_disjoint`."""
    if subject_disjoint:
        return subject_split(examples.metadata["subject"], holdouts, seed)
    return stratified_split(examples.labels, holdouts, seed)


def _column(values: Sequence[Any]) -> np.ndarray:
    """One object per record (np.asarray would unpack a box tuple or a pixel array into a new axis)."""
    column = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        column[i] = value
    return column


def carve_validation(examples: Examples, seed: int, fraction: float = 0.1) -> dict[str, np.ndarray]:
    """The database's own train / test (metadata "split"), with `fraction` of train held out for
    validation, stratified by class (RAF-DB, AffectNet, SFEW: their test labels are not public or
    their validation set is the test split)."""
    test = np.flatnonzero(examples.metadata["split"] == "test")
    train_pool = np.flatnonzero(examples.metadata["split"] == "train")
    parts = stratified_split(examples.labels[train_pool], (("validation", fraction),), seed)
    return {"train": train_pool[parts["train"]], "validation": train_pool[parts["validation"]], "test": test}


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
