"""`jaffe`: the Japanese Female Facial Expression database, 10 subjects, 7 expressions, MTCNN crops."""

from __future__ import annotations

import re

import tensorflow_datasets as tfds

from hsnet_jax.data.pose import PoseBuilder, pose_configs

EXPRESSIONS = {"AN": "angry", "DI": "disgust", "FE": "fear", "HA": "happy", "NE": "neutral", "SA": "sad",
               "SU": "surprise"}


class Jaffe(PoseBuilder, skip_registration=True):
    """JAFFE: 80 / 10 / 10 train / validation / test, seeded, stratified (or subject-disjoint)."""

    TITLE = "JAFFE"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}
    # KA.AN1.39.tiff: subject, expression with its repetition, picture number.
    FILE_PATTERN = re.compile(r"([A-Z]{2})\.([A-Z]{2})(\d)\.(\d+)\.tiff?", re.IGNORECASE)
    EXAMPLE_FILE = "KA.AN1.39.tiff"
    CLASS_NAMES = tuple(EXPRESSIONS.values())
    HOLDOUTS = (("test", 0.1), ("validation", 1 / 9))
    IMAGE_SIZE = 224
    METADATA = ("subject",)
    HOMEPAGE = "https://zenodo.org/record/3451524"
    BUILDER_CONFIGS = pose_configs(frontal="")[:2]  # default, subject_disjoint: one angle only
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request JAFFE from {HOMEPAGE} and unpack its images into --manual_dir (subfolders are
    searched too), keeping the official file names such as KA.AN1.39.tiff (subject,
    expression AN DI FE HA NE SA SU with its number, picture number).
    """

    def _parse(self, match):
        subject, code = match.group(1).upper(), match.group(2).upper()
        if code not in EXPRESSIONS:
            raise ValueError(f"unknown expression code {code!r} (expected one of {' '.join(EXPRESSIONS)})")
        return EXPRESSIONS[code], "", (subject,)
