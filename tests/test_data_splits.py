"""Seeded stratified and subject-disjoint splits, and the subject-independent folds."""

import numpy as np

from hsnet_jax.data.rafd import Rafd
import pytest

from hsnet_jax.data.splits import fold_split, stratified_split, subject_folds, subject_split

RAFD = Rafd.HOLDOUTS


def test_rafd_fractions_give_the_papers_per_class_counts():
    labels = np.repeat(np.arange(8), 1005)
    parts = stratified_split(labels, RAFD, seed=0)
    for name, n in (("train", 644), ("validation", 160), ("test", 201)):
        assert np.bincount(labels[parts[name]]).tolist() == [n] * 8
    assert len(np.unique(np.concatenate(list(parts.values())))) == len(labels)


def test_seeded():
    labels = np.arange(100) % 4
    a, b, c = (stratified_split(labels, (("test", 0.2),), s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a["test"], b["test"])
    assert not np.array_equal(a["test"], c["test"])


def test_subject_split_is_disjoint_and_complete():
    subjects = np.repeat([f"s{i}" for i in range(70)], 70)
    parts = subject_split(subjects, (("test", 0.2), ("validation", 0.2)), seed=0)
    groups = {k: set(subjects[v]) for k, v in parts.items()}
    assert [len(groups[k]) for k in ("train", "validation", "test")] == [45, 11, 14]
    assert not (groups["train"] & groups["test"]) and not (groups["validation"] & groups["test"])
    assert sum(len(v) for v in parts.values()) == len(subjects)


def test_nothing_to_split_gives_empty_splits_not_an_error():
    for parts in (stratified_split(np.array([], np.int64), RAFD, seed=0), subject_split([], RAFD, seed=0)):
        assert {k: len(v) for k, v in parts.items()} == {"train": 0, "test": 0, "validation": 0}


def test_folds_deal_sorted_subjects_round_robin_and_cover_each_once():
    subjects = np.repeat([f"S{n:03d}" for n in (37, 5, 10, 11, 14, 22, 26)], 3)
    folds = subject_folds(subjects, 3)
    assert [f.tolist() for f in folds] == [["S005", "S014", "S037"], ["S010", "S022"], ["S011", "S026"]]
    assert len(subject_folds(subjects, 7)) == 7  # leave one subject out
    for test in folds:
        parts = fold_split(subjects, test, 0.2, seed=1)
        assert sorted(set(subjects[parts["test"]])) == test.tolist()
        seen = [set(subjects[parts[name]]) for name in ("train", "validation", "test")]
        assert sum(map(len, seen)) == 7 and len(set.union(*seen)) == 7  # disjoint, complete
        assert len(seen[1]) == 1  # at least one validation subject
        assert sorted(np.concatenate(list(parts.values()))) == list(range(len(subjects)))
    again = fold_split(subjects, folds[0], 0.2, seed=1)
    assert np.array_equal(again["validation"], fold_split(subjects, folds[0], 0.2, seed=1)["validation"])
    with pytest.raises(ValueError):
        subject_folds(subjects, 8)
