"""Expression class names and the canonical 7-expression space shared by all datasets.

Each database names and orders its classes its own way (KDEF says "afraid", FERG-DB "joy",
FER2013 "angry", FERPlus "happiness", CK+ "sadness"); mapping every one onto RAF-DB's names
lets a model trained on one database be evaluated on another. Contempt (RaFD, AffectNet-8,
FERPlus, CK+) has no counterpart and maps to -1; every other class of every database maps
(tests/test_data_expressions.py checks them all).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# RAF-DB's official order (its label file's 1..7); also the generated set's classes.
CANONICAL_EXPRESSIONS: tuple[str, ...] = (
    "surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral",
)

_SYNONYMS = {
    "surprised": "surprise", "afraid": "fear", "fearful": "fear", "disgusted": "disgust",
    "happy": "happiness", "joy": "happiness", "sad": "sadness", "angry": "anger",
}


def canonical_mapping(class_names: Sequence[str]) -> np.ndarray:
    """Dataset class index -> index into CANONICAL_EXPRESSIONS, -1 where none (contempt)."""
    out = []
    for name in class_names:
        name = _SYNONYMS.get(name.lower(), name.lower())
        out.append(CANONICAL_EXPRESSIONS.index(name) if name in CANONICAL_EXPRESSIONS else -1)
    return np.asarray(out, np.int64)
