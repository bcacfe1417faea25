"""`kdef`: the Karolinska Directed Emotional Faces, 7 expressions, 5 angles, MTCNN crops 256x256."""

from __future__ import annotations

import re

from hsnet_jax.data.pose import PoseBuilder, pose_configs

EXPRESSIONS = {"AF": "afraid", "AN": "angry", "DI": "disgusted", "HA": "happy", "NE": "neutral", "SA": "sad",
               "SU": "surprised"}


class Kdef(PoseBuilder, skip_registration=True):
    """KDEF: 8:2 train/test, 20% of train for validation (seeded, stratified or subject-disjoint)."""

    TITLE = "KDEF"
    # AF01ANFL.JPG: session A/B, sex F/M, subject 01-35, expression, angle (FL HL S HR FR).
    FILE_PATTERN = re.compile(r"([AB])([FM])(\d{2})([A-Z]{2})(FL|HL|S|HR|FR)\.JPE?G", re.IGNORECASE)
    EXAMPLE_FILE = "AF01ANFL.JPG"
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

    def _parse(self, match):
        session, sex, number, code, angle = (g.upper() for g in match.groups())
        if code not in EXPRESSIONS:
            raise ValueError(f"unknown expression code {code!r} (expected one of {' '.join(EXPRESSIONS)})")
        # A person is sex + number; sessions A and B photograph the same people.
        return EXPRESSIONS[code], angle, (sex + number, session, angle)
