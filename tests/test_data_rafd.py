"""RaFD builder: real file names, MTCNN crops, stratified / subject-disjoint / frontal configs."""

import os

import numpy as np
import pytest

import data_trees
from hsnet_jax.data import load_split, prepare_dataset
from hsnet_jax.data.errors import LabelError

EMOTIONS = ("angry", "happy", "surprised")


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("rafd")
    manual = str(root / "RaFD")
    # Three of the eight emotions keep MTCNN's work small; the class list is still all eight.
    data_trees.rafd(manual, subjects=(1, 2, 3, 4, 5), angles=("090",), emotions=EMOTIONS)
    data_trees.rafd(manual, subjects=(1, 2), angles=("045",), emotions=EMOTIONS)
    # A profile view in which MTCNN finds no face: kept as a centre crop and counted.
    data_trees.save(os.path.join(manual, "Rafd180_06_Moroccan_male_sad_left.jpg"), data_trees.image(7, (160, 120)))
    return manual, str(root / "data")


def test_default_config(tree):
    manual, data_dir = tree
    summary = prepare_dataset("rafd", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == list(data_trees.RAFD_EMOTIONS)
    assert summary["no_face"] == ["Rafd180_06_Moroccan_male_sad_left.jpg"]
    counts = summary["class_counts"]
    # 7 images per emotion: round(7 * 201/1005) = 1 test, round(6 * 160/804) = 1 validation;
    # sad has only the profile image: round(0.2) = 0 test, 0 validation.
    assert counts["train"] == [5, 0, 0, 0, 5, 0, 1, 5]
    assert counts["test"] == counts["validation"] == [1, 0, 0, 0, 1, 0, 0, 1]
    test = load_split("rafd", "test", data_dir)
    assert test.images.shape == (3, 100, 100, 3)
    assert sorted(test.labels.tolist()) == [0, 4, 7]
    for i, name in enumerate(test.metadata["file_name"]):
        angle, subject, ethnicity, gender, emotion, gaze = name[4:-4].split("_")
        assert test.class_names[test.labels[i]] == emotion
        assert (test.metadata["angle"][i], test.metadata["subject"][i],
                test.metadata["gaze"][i]) == (angle, subject, gaze)
        assert test.metadata["gender"][i] == gender and test.metadata["ethnicity"][i] == ethnicity.lower()


def test_subject_disjoint_and_frontal(tree):
    manual, data_dir = tree
    prepare_dataset("rafd/subject_disjoint", data_dir=data_dir, manual_dir=manual)
    subjects = {s: set(load_split("rafd/subject_disjoint", s, data_dir).metadata["subject"])
                for s in ("train", "validation", "test")}
    assert len(subjects["test"]) == 1 and len(subjects["validation"]) == 1 and len(subjects["train"]) == 4
    assert not (subjects["train"] & subjects["test"] or subjects["train"] & subjects["validation"]
                or subjects["validation"] & subjects["test"])
    summary = prepare_dataset("rafd/frontal", data_dir=data_dir, manual_dir=manual)
    assert sum(map(sum, summary["class_counts"].values())) == 5 * 3
    angles = np.concatenate([load_split("rafd/frontal", s, data_dir).metadata["angle"] for s in ("train", "test")])
    assert set(angles) == {"090"}


def test_unknown_emotion_and_bad_file_name(tmp_path):
    manual = str(tmp_path / "RaFD")
    data_trees.rafd(manual, subjects=(1,), angles=("090",), emotions=("happy",))
    data_trees.save(os.path.join(manual, "Rafd090_01_Caucasian_female_bored_frontal.jpg"),
                    data_trees.image(0, (40, 30)))
    data_trees.save(os.path.join(manual, "portrait.jpg"), data_trees.image(0, (40, 30)))
    with pytest.raises(LabelError, match=r"2 file name\(s\) outside the RaFD naming scheme .*unknown emotion 'bored'"
                                         r".*portrait.jpg: not a RaFD file name"):
        prepare_dataset("rafd", data_dir=str(tmp_path / "d"), manual_dir=manual)
