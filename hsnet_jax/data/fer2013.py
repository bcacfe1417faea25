"""`fer2013`: the ICML 2013 challenge's 35,887 48x48 grey faces, 7 expressions, its own three splits.

The images are the rows of `fer2013.csv` (2,304 space-separated pixel values), not files: a
record's source bytes (for the fingerprint) are its 2,304 pixels, and its `file_name` the name
FERPlus gives row i (0-based), `fer%07d.png`, so that FER2013 and FERPlus name the same faces
alike. FERPlus (ferplus.py) reads the same rows.
"""

from __future__ import annotations

import csv
import os

import numpy as np

from hsnet_jax.runtime.progress import Progress
from hsnet_jax.data.builder import Examples, ManualBuilder, Records, check_labels, one_line
from hsnet_jax.data.errors import LayoutError

CSV_NAME = "fer2013.csv"
HEADER = ("emotion", "pixels", "Usage")
USAGES = {"Training": "train", "PublicTest": "validation", "PrivateTest": "test"}
SIDE = 48


def find_csv(root: str, name: str, instructions: str) -> str:
    """`root/name`, or `root/fer2013/name` (how Kaggle's archive unpacks); LayoutError if neither."""
    for path in (os.path.join(root, name), os.path.join(root, "fer2013", name)):
        if os.path.isfile(path):
            return path
    raise LayoutError(f"{name} not found: expected {os.path.join(root, name)}. {one_line(instructions)}")


def read_header(rows, path: str, header: tuple[str, ...], what: str) -> None:
    """Raises LayoutError unless the CSV starts with the official `header`."""
    found = tuple(next(rows, ()))
    if found != header:
        raise LayoutError(f"{path} does not start with {what}'s header {','.join(header)} "
                          f"(found {','.join(found) or 'nothing'})")


Row = tuple[str, np.ndarray, str]  # emotion (text), pixels [48, 48] uint8, Usage


def fer2013_rows(root: str, instructions: str) -> tuple[str, list[Row | None], list[str]]:
    """(path, one Row per line (None: a problem, reported), problems) of fer2013.csv."""
    path = find_csv(root, CSV_NAME, instructions)
    rows, problems = [], []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        read_header(reader, path, HEADER, "FER2013")
        for line_no, row in enumerate(reader, 2):
            where = f"{path}:{line_no}"
            if len(row) != len(HEADER):
                problems.append(f"{where}: {len(row)} fields, expected {len(HEADER)}")
                rows.append(None)
                continue
            emotion, text, usage = row
            try:
                pixels = np.asarray(text.split(), np.int64)
            except ValueError as e:
                pixels, why = None, str(e)
            else:
                why = "" if pixels.size == SIDE * SIDE and pixels.min() >= 0 and pixels.max() <= 255 else (
                    f"{pixels.size} pixel values, expected {SIDE * SIDE} in 0..255")
            if why:
                problems.append(f"{where}: {why}")
            if usage not in USAGES:
                problems.append(f"{where}: Usage {usage!r} is not one of {', '.join(USAGES)}")
            good = not why and usage in USAGES
            rows.append((emotion, pixels.astype(np.uint8).reshape(SIDE, SIDE), usage) if good else None)
    return path, rows, problems


def file_name(row: int) -> str:
    """FERPlus's name for fer2013.csv's row `row` (0-based, header not counted)."""
    return f"fer{row:07d}.png"


class Fer2013(ManualBuilder, skip_registration=True):
    """FER2013: Training / PublicTest / PrivateTest = train / validation / test, as distributed."""

    TITLE = "FER2013"
    CLASS_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # codes 0-6
    IMAGE_SIZE = SIDE
    HOMEPAGE = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download fer2013.tar.gz from {HOMEPAGE} and unpack it so that --manual_dir holds
    fer2013.csv (or fer2013/fer2013.csv), header emotion,pixels,Usage.
    """

    def _records(self, root: str) -> Records:
        path, rows, problems = fer2013_rows(root, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        records = Records([], [], {"file_name": [], "pixels": []}, [])
        for i, row in enumerate(rows):
            if row is not None and row[0] not in {str(c) for c in range(len(self.CLASS_NAMES))}:
                problems.append(f"{path}:{i + 2}: emotion {row[0]!r} out of range (0..6)")
            elif row is not None:
                records.add(path, int(row[0]), (file_name(i), row[1]), USAGES[row[2]])
        check_labels(problems, self.TITLE)
        return records

    def _source(self, records: Records, i: int) -> bytes:
        return records.metadata["pixels"][i].tobytes()

    def _decode(self, records: Records, indices: np.ndarray, bar: Progress, reasons: dict[str, str]
                ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        grey = np.stack([records.metadata["pixels"][i] for i in indices])
        bar.update(len(indices))
        return np.repeat(grey[..., None], 3, axis=-1), np.arange(len(indices)), []

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return {name: np.flatnonzero(examples.metadata["split"] == name) for name in USAGES.values()}
