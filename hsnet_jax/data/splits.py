"""Seeded train/validation/test assignment: stratified by class, or disjoint by subject, and
the subject-independent folds of the k-fold protocols (CK+'s 10 folds, JAFFE's leave one
subject out).

A split is described as a sequence of holdouts, each a fraction of what is left before it:
KDEF's "8:2 train/test, then 20% of train for validation" is `(("test", 0.2),
("validation", 0.2))`; what remains is `train`. Stratified splits apply the holdouts within
each class (so per-class counts are exact: RaFD's 644/160/201 of 1005), subject-disjoint ones
to the list of subjects, so that no subject appears in two splits.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

Holdouts = Sequence[tuple[str, float]]


def _holdout(items: np.ndarray, holdouts: Holdouts, rng: np.random.Generator) -> dict[str, np.ndarray]:
    remaining = rng.permutation(items)
    out = {}
    for name, fraction in holdouts:
        n = int(round(len(remaining) * fraction))
        out[name], remaining = remaining[:n], remaining[n:]
    out["train"] = remaining
    return out


def _merge(parts: list[dict[str, np.ndarray]], holdouts: Holdouts) -> dict[str, np.ndarray]:
    names = ["train"] + [name for name, _ in holdouts]
    empty = np.empty(0, np.int64)  # no classes at all: every split empty, not a concatenate error
    return {name: np.sort(np.concatenate([empty] + [p[name] for p in parts]).astype(np.int64)) for name in names}


def stratified_split(labels: np.ndarray, holdouts: Holdouts, seed: int) -> dict[str, np.ndarray]:
    """Split name -> sorted example indices; each class is split by the same fractions."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = [_holdout(np.flatnonzero(labels == c), holdouts, rng) for c in np.unique(labels)]
    return _merge(parts, holdouts)


def subject_split(subjects: Sequence[str], holdouts: Holdouts, seed: int) -> dict[str, np.ndarray]:
    """Split name -> sorted example indices, holding out whole subjects."""
    subjects = np.asarray(subjects)
    groups = _holdout(np.unique(subjects), holdouts, np.random.default_rng(seed))
    return {name: np.flatnonzero(np.isin(subjects, members)) for name, members in groups.items()}


def subject_folds(subjects: Sequence[str], folds: int) -> list[np.ndarray]:
    """Each fold's subjects: the subjects in ascending id order dealt round robin (subject i
    to fold i mod `folds`), as the published CK+ fold files are; `folds` = the number of
    subjects is leave one subject out."""
    unique = np.unique(np.asarray(subjects))
    if not 2 <= folds <= len(unique):
        raise ValueError(f"{folds} folds need between 2 and {len(unique)} (the subjects) folds")
    return [unique[k::folds] for k in range(folds)]


def fold_split(subjects: Sequence[str], test_subjects: Sequence[str], validation: float,
               seed: int) -> dict[str, np.ndarray]:
    """A fold's example indices: `test` holds the fold's subjects, `validation` a seeded share
    (at least one subject) of the others, `train` the rest; no subject is in two parts."""
    subjects = np.asarray(subjects)
    others = np.setdiff1d(np.unique(subjects), np.asarray(test_subjects))
    held = max(1, int(round(len(others) * validation)))
    chosen = np.random.default_rng(seed).permutation(others)
    groups = {"test": np.asarray(test_subjects), "validation": chosen[:held], "train": chosen[held:]}
    return {name: np.flatnonzero(np.isin(subjects, members)) for name, members in groups.items()}
