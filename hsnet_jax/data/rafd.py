"""`rafd`: the Radboud Faces Database, 8 expressions, 5 camera angles, MTCNN face crops 100x100."""

from __future__ import annotations

import re

from hsnet_jax.data.pose import PoseBuilder, pose_configs



class Rafd(PoseBuilder, skip_registration=True):
    """RaFD: per class 644 / 160 / 201 train / validation / test (seeded, stratified)."""

    TITLE = "RaFD"
    # Rafd090_01_Caucasian_female_angry_frontal.jpg: angle, subject, ethnicity, gender, emotion, gaze.
    FILE_PATTERN = re.compile(r"Rafd(\d{3})_(\d+)_([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)_([A-Za-z]+)\.jpe?g",
                              re.IGNORECASE)
    EXAMPLE_FILE = "Rafd090_01_Caucasian_female_angry_frontal.jpg"
    CLASS_NAMES = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
    # Per class 1,005 images (67 subjects x 5 angles x 3 gazes): 201 test, then 160 of the
    # remaining 804 for validation, 644 train, as in the paper.
    HOLDOUTS = (("test", 201 / 1005), ("validation", 160 / 804))
    IMAGE_SIZE = 100
    METADATA = ("subject", "angle", "ethnicity", "gender", "gaze")
    HOMEPAGE = "https://rafd.socsci.ru.nl"
    BUILDER_CONFIGS = pose_configs(frontal="090")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request RaFD from {HOMEPAGE} and unpack its images into --manual_dir (subfolders are
    searched too), keeping the official file names such as
    Rafd090_01_Caucasian_female_angry_frontal.jpg (angle, subject, ethnicity, gender,
    emotion, gaze).
    """

    def _parse(self, match):
        angle, subject, ethnicity, gender, emotion, gaze = match.groups()
        if emotion.lower() not in self.CLASS_NAMES:
            raise ValueError(f"unknown emotion {emotion!r} (expected one of {', '.join(self.CLASS_NAMES)})")
        return emotion.lower(), angle, (subject, angle, ethnicity.lower(), gender.lower(), gaze.lower())

