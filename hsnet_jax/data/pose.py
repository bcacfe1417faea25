"""RaFD, KDEF and JAFFE: posed photographs named by a fixed pattern, MTCNN face crops, seeded splits
(stratified, or subject-disjoint), all or only the frontal camera angle."""

from __future__ import annotations

import abc
import collections
import dataclasses
import os
import re

import numpy as np
import tensorflow_datasets as tfds

from hsnet_jax.data.builder import Examples, ManualBuilder, Records, holdout_split
from hsnet_jax.data.errors import LayoutError
from hsnet_jax.data.scan import scan
from hsnet_jax.data.splits import Holdouts


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
    """RaFD, KDEF and JAFFE: posed photographs named by a fixed pattern, cropped to the face by MTCNN
    and split by `HOLDOUTS` (stratified, or subject-disjoint with the config of that name)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.1.0": "Splits from file names only (records ordered by file name, not by path): the same "
                 "files give the same splits in any folder layout. Trees in subfolders split differently "
                 "from 1.0.0; flat trees (RaFD's official layout) and KDEF's official folders do not.",
        "1.0.0": "Records ordered by full path.",
    }
    DETECT_FACES = True
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

    def _split(self, examples: Examples) -> dict[str, np.ndarray]:
        return holdout_split(examples, self.HOLDOUTS, self.SEED, self.builder_config.subject_disjoint)
