"""`affectnet`: AffectNet's manually annotated faces, 7 or 8 expressions, cropped from their boxes.

Two layouts are read: the official one (`Manually_Annotated_file_lists/training.csv` and
`validation.csv`, images under `Manually_Annotated_Images/`) and the one some mirrors ship
(`train_set/images/N.jpg` with `train_set/annotations/N_exp.npy`, N_val, N_aro, N_lnd; `val_set/`
alike), whose images are already face crops and are kept whole.
"""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import tensorflow_datasets as tfds
from PIL import Image

from hsnet_jax.data.boxes import BoxBuilder
from hsnet_jax.data.builder import Examples, Records, carve_validation, check_labels, one_line
from hsnet_jax.data.errors import LayoutError
from hsnet_jax.faces.crop_rule import points_in_crop

LIST_DIR, IMAGE_DIR = "Manually_Annotated_file_lists", "Manually_Annotated_Images"
LISTS = {"training.csv": "train", "validation.csv": "test"}  # the test set is not public
HEADER = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
          "expression", "valence", "arousal")
SETS = {"train_set": "train", "val_set": "test"}  # the newer layout
EXPRESSIONS = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")  # codes 0-7
OTHER = {8: "none", 9: "uncertain", 10: "non-face"}  # codes 8-10: never kept
NUM_LANDMARKS = 68


@dataclasses.dataclass
class AffectNetConfig(tfds.core.BuilderConfig):
    num_classes: int = 7


class Affectnet(BoxBuilder, skip_registration=True):
    """AffectNet: official training (validation = 10% of it, stratified) / official validation as test."""

    TITLE = "AffectNet"
    IMAGE_SIZE = 112
    METADATA = ("valence", "arousal", "landmarks")  # landmarks: 68 "x;y" pairs in the stored crop's pixels
    HOMEPAGE = "http://mohammadmahoor.com/affectnet/"
    BUILDER_CONFIGS = [
        AffectNetConfig(name="7", description="codes 0-6 (contempt excluded, as AffectNet-7)", num_classes=7),
        AffectNetConfig(name="8", description="codes 0-7 (AffectNet-8)", num_classes=8),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request AffectNet from {HOMEPAGE} and unpack it so that --manual_dir holds
    {LIST_DIR}/training.csv and validation.csv (header {','.join(HEADER)}) and
    {IMAGE_DIR}/<subDirectory_filePath>; or the newer layout train_set/images/N.jpg with
    train_set/annotations/N_exp.npy (and val_set/ alike).
    """

    @property
    def CLASS_NAMES(self) -> tuple[str, ...]:  # noqa: N802 -- the name the base class reads
        return EXPRESSIONS[:self.builder_config.num_classes]

    def _records(self, root: str) -> Records:
        records = Records([], [], {"file_name": [], "valence": [], "arousal": [], "landmarks": [], "box": []}, [])
        if os.path.isdir(os.path.join(root, LIST_DIR)):
            problems = [p for name, split in LISTS.items() for p in self._read_list(root, name, split, records)]
        elif any(os.path.isdir(os.path.join(root, s)) for s in SETS):
            problems = [p for name, split in SETS.items() for p in self._read_set(root, name, split, records)]
        else:
            raise LayoutError(f"no AffectNet file lists under {root}: expected {os.path.join(root, LIST_DIR)} "
                              f"(or train_set/). {one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        check_labels(problems, "AffectNet")
        return records

    def _keeps(self, code: int, records: Records) -> bool:
        """Whether `code` is one of this config's classes; the others are counted as excluded."""
        if code < self.builder_config.num_classes:
            return True
        why = OTHER[code] if code in OTHER else f"{EXPRESSIONS[code]} (config {self.builder_config.name})"
        records.excluded[why] += 1
        return False

    def _read_list(self, root: str, name: str, split: str, records: Records) -> list[str]:
        path = os.path.join(root, LIST_DIR, name)
        if not os.path.isfile(path):
            raise LayoutError(f"AffectNet file list not found: expected {path}. "
                              f"{one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        problems = []
        with open(path, newline="", encoding="utf-8") as f:
            rows = csv.reader(f)
            header = tuple(next(rows, ()))
            if header != HEADER:
                raise LayoutError(f"{path} does not start with AffectNet's header {','.join(HEADER)} "
                                  f"(found {','.join(header) or 'nothing'})")
            for line_no, row in enumerate(rows, 2):
                where = f"{path}:{line_no}"
                if len(row) != len(HEADER):
                    problems.append(f"{where}: {len(row)} fields, expected {len(HEADER)}")
                    continue
                if row[6].strip() not in {str(c) for c in range(11)}:
                    problems.append(f"{where}: expression {row[6]!r} out of range (0..10)")
                    continue
                if not self._keeps(int(row[6]), records):
                    continue
                try:
                    x, y, w, h = (float(v) for v in row[1:5])
                    points = np.asarray([float(v) for v in row[5].split(";") if v.strip()])
                    float(row[7]), float(row[8])
                except ValueError as e:
                    problems.append(f"{where}: {e}")
                    continue
                if w <= 0 or h <= 0 or len(points) != 2 * NUM_LANDMARKS:
                    problems.append(f"{where}: face box {w:g}x{h:g} or {len(points)} landmark values "
                                    f"(expected a positive box and {2 * NUM_LANDMARKS})")
                    continue
                image = os.path.join(root, IMAGE_DIR, *row[0].split("/"))
                if not os.path.isfile(image):
                    problems.append(f"{where}: no image {image}")
                    continue
                box = (x, y, x + w, y + h)
                records.add(image, int(row[6]), (row[0], row[7], row[8], _crop_points(points, box, self.IMAGE_SIZE),
                                                 box), split)
        return problems

    def _read_set(self, root: str, name: str, split: str, records: Records) -> list[str]:
        images, annotations = os.path.join(root, name, "images"), os.path.join(root, name, "annotations")
        if not os.path.isdir(images) or not os.path.isdir(annotations):
            raise LayoutError(f"AffectNet {name}/ must hold images/ and annotations/ (under {root}). "
                              f"{one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        problems = []
        stems = {os.path.splitext(f)[0]: f for f in os.listdir(images) if not f.startswith(".")}
        coded = {f[:-len("_exp.npy")] for f in os.listdir(annotations) if f.endswith("_exp.npy")}
        problems += [f"{os.path.join(annotations, n)}_exp.npy: no image {n}.jpg in {images}"
                     for n in sorted(coded - set(stems))]
        problems += [f"{os.path.join(images, stems[n])}: no {n}_exp.npy in {annotations}"
                     for n in sorted(set(stems) - coded)]
        for n in sorted(coded & set(stems)):
            where = os.path.join(annotations, n)
            value = str(np.load(where + "_exp.npy")).strip()
            if value not in {str(c) for c in range(11)}:
                problems.append(f"{where}_exp.npy: expression {value!r} out of range (0..10)")
                continue
            if not self._keeps(int(value), records):
                continue
            image = os.path.join(images, stems[n])
            extra = [np.load(where + s) if os.path.isfile(where + s) else None
                     for s in ("_val.npy", "_aro.npy", "_lnd.npy")]
            landmarks = ""
            if extra[2] is not None:
                with Image.open(image) as im:  # the header only: the size the landmarks are scaled from
                    width, height = im.size
                landmarks = _format_points(np.asarray(extra[2], np.float64).reshape(-1, 2)
                                           * (self.IMAGE_SIZE / width, self.IMAGE_SIZE / height))
            records.add(image, int(value), (f"{name}/{stems[n]}", *("" if v is None else str(v) for v in extra[:2]),
                                            landmarks, None), split)
        return problems

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return carve_validation(examples, self.SEED)


def _crop_points(points: np.ndarray, box, size: int) -> str:
    return _format_points(points_in_crop(points.reshape(-1, 2), box, size))


def _format_points(points: np.ndarray) -> str:
    return ";".join(f"{v:.2f}" for v in points.reshape(-1))
