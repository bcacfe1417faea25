"""`ferplus`: FER2013's faces relabelled by 10 annotators each (Barsoum et al., ICMI 2016), 8 classes.

`fer2013new.csv` holds one row per fer2013.csv row, in order: Usage, Image name (empty: the face
was dropped), then the votes for neutral, happiness, surprise, sadness, anger, disgust, fear,
contempt, unknown and NF (not a face). Labels follow Microsoft's reference reader
(microsoft/FERPlus src/ferplus.py), in its four training modes, our configs:
- single votes are removed first (a count of 1 is set to 0);
- majority: the class with more than half of the remaining votes, else unknown;
- probability, crossentropy: the most voted classes, taken in order of votes (ties together, in
  class order) until they hold 75% of the votes or three are taken; unknown when unknown or NF
  is reached (it is dropped again if a class came before it), when the classes taken hold no
  more than half of the votes, or when more than three tie;
- multi_target: every class with at least 30% of the votes; unknown when they hold no more than half.
The target is the taken votes normalised; a face whose largest target is unknown or NF is
dropped and counted. As in the reference, validation and test are labelled by majority in
every mode, so all configs share their test split. Each example keeps its raw `votes` and the
mode's 8-class `distribution` (the soft target; `label` is its argmax).
"""

from __future__ import annotations

import csv
import dataclasses
from typing import Sequence

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import Records, check_labels
from hsnet_jax.data.fer2013 import USAGES, Fer2013, fer2013_rows, file_name, find_csv, read_header

NEW_CSV = "fer2013new.csv"
CLASSES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
HEADER = ("Usage", "Image name") + CLASSES + ("unknown", "NF")
MODES = ("majority", "probability", "crossentropy", "multi_target")


def _most_voted(votes: np.ndarray, total: float) -> tuple[np.ndarray, int]:
    """probability / crossentropy: (the votes taken, how many classes), before the final check."""
    left, taken, count = votes.copy(), np.zeros_like(votes), 0
    while taken.sum() < 0.75 * total and count < 3:
        top = left.max()
        for i in np.flatnonzero(left == top):
            taken[i], left[i], count = top, 0, count + 1
            if i >= len(CLASSES):  # unknown or NF: stop; drop it if a class was taken before
                if taken.sum() > top:
                    taken[i], count = 0, count - 1
                return taken, count
    return taken, count


def ferplus_target(votes: Sequence[int], mode: str) -> np.ndarray | None:
    """The 8-class target of one face's 10 vote counts in `mode`; None when it is dropped."""
    votes = np.where(np.asarray(votes, np.float64) > 1, votes, 0).astype(np.float64)  # single votes out
    total = votes.sum()
    taken, count = np.zeros_like(votes), 0
    if mode == "majority":
        if total and votes.max() > 0.5 * total:
            taken[np.argmax(votes)] = votes.max()
    elif mode == "multi_target":
        taken = np.where(votes >= 0.3 * total, votes, 0)
    else:
        taken, count = _most_voted(votes, total)
    if taken.sum() <= 0.5 * total or count > 3 or not taken.sum() or np.argmax(taken) >= len(CLASSES):
        return None
    return taken[:len(CLASSES)] / taken[:len(CLASSES)].sum()


@dataclasses.dataclass
class FerPlusConfig(tfds.core.BuilderConfig):
    pass


class Ferplus(Fer2013, skip_registration=True):
    """FERPlus: FER2013's splits; labels by Microsoft's rules in the config's mode (train split)."""

    TITLE = "FERPlus"
    CLASS_NAMES = CLASSES
    METADATA = ("votes", "distribution")  # 10 counts, 8 probabilities; ";"-separated
    HOMEPAGE = "https://github.com/microsoft/FERPlus"
    BUILDER_CONFIGS = [FerPlusConfig(name=mode, description=f"train labels by {mode}") for mode in MODES]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Put FER2013's fer2013.csv (from Kaggle) and FERPlus's fer2013new.csv (from {HOMEPAGE})
    into --manual_dir (or its fer2013/ folder); fer2013new.csv's header is {','.join(HEADER)}.
    """

    def _records(self, root: str) -> Records:
        path, rows, problems = fer2013_rows(root, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        new_path = find_csv(root, NEW_CSV, self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        records = Records([], [], {"file_name": [], "pixels": [], "votes": [], "distribution": []}, [])
        with open(new_path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            read_header(reader, new_path, HEADER, "FERPlus")
            new_rows = list(reader)
        if len(new_rows) != len(rows):
            problems.append(f"{new_path} has {len(new_rows)} rows, {path} {len(rows)} (one per face, in order)")
        for i, (row, face) in enumerate(zip(new_rows, rows)):
            where, usage = f"{new_path}:{i + 2}", face[2] if face else ""
            if face is None:
                continue  # its fer2013.csv line is reported
            if len(row) != len(HEADER) or not all(v.strip().isdigit() for v in row[2:]):
                problems.append(f"{where}: expected Usage, Image name and 10 vote counts, got {','.join(row)!r}")
            elif row[0] != usage:
                problems.append(f"{where}: Usage {row[0]!r}, but {usage!r} in {path}")
            elif row[1] and row[1] != file_name(i):
                problems.append(f"{where}: Image name {row[1]!r}, expected {file_name(i)!r} (fer2013.csv's order)")
            elif not row[1]:
                records.excluded["no Image name (dropped by FERPlus)"] += 1
            else:
                self._add(records, path, i, face[1], [int(v) for v in row[2:]], usage)
        check_labels(problems, self.TITLE)
        return records

    def _add(self, records: Records, path: str, i: int, pixels: np.ndarray, votes: list[int], usage: str) -> None:
        mode = self.builder_config.name if USAGES[usage] == "train" else "majority"
        target = ferplus_target(votes, mode)
        if target is None:
            records.excluded[f"unknown or not a face ({mode})"] += 1
            return
        records.add(path, int(np.argmax(target)), (file_name(i), pixels, ";".join(map(str, votes)),
                                                   ";".join(f"{p:.6g}" for p in target)), USAGES[usage])
