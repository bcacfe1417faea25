"""`ckplus`: the Extended Cohn-Kanade database (CK+), posed sequences from neutral to peak, MTCNN crops.

The usual protocol: a labelled sequence's last three frames carry its label (the Emotion file
is named after its last, peak frame); `with_neutral` adds each labelled sequence's first frame
as neutral. Sequences without an Emotion file are skipped and counted. Splits hold out whole
subjects (seeded, 80 / 10 / 10); `subject` and `sequence` are kept for the k-fold protocols.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import Examples, ManualBuilder, Records, check_labels, holdout_split, one_line, require_dir
from hsnet_jax.data.scan import scan

IMAGE_DIR, LABEL_DIR = "cohn-kanade-images", "Emotion"
CODES = ("neutral", "anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")  # 0-7, 0 never in a file
FRAME = re.compile(r"(S\d{3})_(\d{3})_(\d{8})\.png")
LABEL = re.compile(r"(S\d{3})_(\d{3})_(\d{8})_emotion\.txt")
PEAK_FRAMES = 3
HOLDOUTS = (("test", 0.1), ("validation", 1 / 9))


@dataclasses.dataclass
class CkConfig(tfds.core.BuilderConfig):
    with_neutral: bool = False


class Ckplus(ManualBuilder, skip_registration=True):
    """CK+: 3 peak frames per labelled sequence (+ its first frame as neutral); subject-disjoint splits."""

    TITLE = "CK+"
    IMAGE_SIZE = 224
    DETECT_FACES = True
    METADATA = ("subject", "sequence")
    HOMEPAGE = "https://www.jeffcohn.net/Resources/"
    BUILDER_CONFIGS = [CkConfig(name="default", description="7 expressions: the last 3 frames of each sequence"),
                       CkConfig(name="with_neutral", description="8 classes: + the first frame as neutral",
                                with_neutral=True)]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request CK+ from {HOMEPAGE} and unpack it so that --manual_dir holds
    {IMAGE_DIR}/S005/001/S005_001_00000011.png ... and {LABEL_DIR}/S005/001/S005_001_00000011_emotion.txt
    (one number: 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness, 7 surprise).
    """

    @property
    def CLASS_NAMES(self) -> tuple[str, ...]:  # noqa: N802 -- the name the base class reads
        return CODES if self.builder_config.with_neutral else CODES[1:]

    def _records(self, root: str) -> Records:
        help_text = one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)
        require_dir(os.path.join(root, IMAGE_DIR), "CK+ images", help_text)
        require_dir(os.path.join(root, LABEL_DIR), "CK+ emotion labels", help_text)
        found = scan(root)
        records = Records([], [], {"file_name": [], "subject": [], "sequence": []}, ignored=found.ignored)
        sequences = collections.defaultdict(list)
        for path in found.files:
            parts = os.path.relpath(path, root).split(os.sep)
            match = FRAME.fullmatch(parts[-1])
            if parts[0] != IMAGE_DIR:
                continue  # outside the images (CK+'s Landmarks/ and FACS/ are text)
            if len(parts) != 4 or not match or match.group(1, 2) != (parts[1], parts[2]):
                records.unparseable.append((path, f"not {IMAGE_DIR}/S005/001/S005_001_00000011.png"))
                continue
            sequences[match.group(1, 2)].append(path)
        labels, problems = self._labels(root, sequences)
        for key, frames in sorted(sequences.items()):
            if key not in labels:
                records.excluded["unlabelled sequence"] += 1
                continue
            chosen = [(frame, labels[key]) for frame in frames[-PEAK_FRAMES:]]
            if self.builder_config.with_neutral and len(frames) > PEAK_FRAMES:
                chosen.insert(0, (frames[0], 0))
            for frame, code in chosen:
                records.add(frame, self.CLASS_NAMES.index(CODES[code]), (os.path.basename(frame), *key))
        check_labels(problems, "CK+")
        return records

    def _labels(self, root: str, sequences: dict[tuple[str, str], list[str]]) -> tuple[dict, list[str]]:
        """(subject, sequence) -> code 1-7 from the Emotion files, and the problems found."""
        labels, problems = {}, []
        for path in scan(os.path.join(root, LABEL_DIR), images_only=False).files:
            match = LABEL.fullmatch(os.path.basename(path))
            if not match:
                problems.append(f"{path}: not an emotion file (S005_001_00000011_emotion.txt)")
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read().strip()
            try:
                value = float(text)
            except ValueError:
                value = -1.0
            key, frames = match.group(1, 2), sorted(sequences.get(match.group(1, 2), []))
            if value not in range(1, 8):
                problems.append(f"{path}: {text!r} is not an emotion code 1..7")
            elif not frames:
                problems.append(f"{path}: no images in {os.path.join(root, IMAGE_DIR, *key)}")
            elif FRAME.fullmatch(os.path.basename(frames[-1])).group(3) != match.group(3):
                problems.append(f"{path}: labels frame {match.group(3)}, but the sequence ends at "
                                f"{os.path.basename(frames[-1])}")
            else:
                labels[key] = int(value)
        return labels, problems

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return holdout_split(examples, HOLDOUTS, self.SEED, subject_disjoint=True)
