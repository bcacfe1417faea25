"""`kdef`: the Karolinska Directed Emotional Faces, 7 expressions, 5 angles, MTCNN crops 256x256."""

from __future__ import annotations

import os
import re

from hsnet_jax.data.builder import PoseBuilder, Records, check_labels, find_images, one_line, pose_configs
from hsnet_jax.data.errors import LayoutError

# AF01ANFL.JPG: session A/B, sex F/M, subject 01-35, expression, angle (FL HL S HR FR).
FILE_PATTERN = re.compile(r"([AB])([FM])(\d{2})([A-Z]{2})(FL|HL|S|HR|FR)\.JPE?G", re.IGNORECASE)
EXPRESSIONS = {"AF": "afraid", "AN": "angry", "DI": "disgusted", "HA": "happy", "NE": "neutral", "SA": "sad",
               "SU": "surprised"}


class Kdef(PoseBuilder, skip_registration=True):
    """KDEF: 8:2 train/test, 20% of train for validation (seeded, stratified or subject-disjoint)."""

    CLASS_NAMES = tuple(EXPRESSIONS.values())
    HOLDOUTS = (("test", 0.2), ("validation", 0.2))  # 8:2 train/test, then 20% of train for validation
    IMAGE_SIZE = 256
    METADATA = ("subject", "session", "angle")
    HOMEPAGE = "https://kdef.se"
    BUILDER_CONFIGS = pose_configs(frontal="S")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download KDEF from {HOMEPAGE} and unpack it so that --manual_dir holds the session/subject
    folders with the official file names, e.g. AF01/AF01ANFL.JPG (session A/B, sex F/M,
    subject 01-35, expression AF AN DI HA NE SA SU, angle FL HL S HR FR); a KDEF/ folder
    level above them is fine.
    """

    def _records(self, root: str) -> Records:
        records = Records([], [], {k: [] for k in ("file_name",) + self.METADATA})
        problems = []
        for path in find_images(root):
            name = os.path.basename(path)
            match = FILE_PATTERN.fullmatch(name)
            if not match:
                problems.append(f"{path}: not a KDEF file name (AF01ANFL.JPG)")
                continue
            session, sex, number, code, angle = (g.upper() for g in match.groups())
            if code not in EXPRESSIONS:
                problems.append(f"{path}: unknown expression code {code!r} (expected one of {' '.join(EXPRESSIONS)})")
                continue
            if self.builder_config.angles and angle not in self.builder_config.angles:
                continue
            records.paths.append(path)
            records.labels.append(self.CLASS_NAMES.index(EXPRESSIONS[code]))
            # A person is sex + number; sessions A and B photograph the same people.
            for key, value in zip(records.metadata, (name, sex + number, session, angle)):
                records.metadata[key].append(value)
        check_labels(problems, "KDEF")
        if not records.paths:
            raise LayoutError(f"no KDEF images found under {root}. {one_line(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}")
        return records
