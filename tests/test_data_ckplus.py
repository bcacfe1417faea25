"""CK+ and JAFFE (posed lab databases, MTCNN crops) on trees in their official layouts and names:
peak frames and the neutral frame, unlabelled sequences counted, subject-disjoint splits, errors."""

import os

import numpy as np
import pytest

import field_trees
from hsnet_jax.data import canonical_mapping, load_split, prepare_dataset
from hsnet_jax.data.errors import LabelError, LayoutError

CK_NAMES = ["anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"]


@pytest.fixture(scope="module")
def ck_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckplus")
    labels = field_trees.ckplus(str(root / "CK+"))
    return str(root / "CK+"), str(root / "data"), labels


def test_ckplus_last_three_frames_of_labelled_sequences(ck_tree):
    manual, data_dir, labels = ck_tree
    summary = prepare_dataset("ckplus", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == CK_NAMES and summary["excluded"] == {"unlabelled sequence": 10}
    counts = summary["class_counts"]
    assert [sum(counts[s]) for s in ("train", "validation", "test")] == [24, 3, 3]
    splits = {s: load_split("ckplus", s, data_dir) for s in ("train", "validation", "test")}
    subjects = [set(split.metadata["subject"]) for split in splits.values()]
    assert sum(map(len, subjects)) == 10 and len(set.union(*subjects)) == 10  # no subject in two splits
    train = splits["train"]
    assert train.images.shape[1:] == (224, 224, 3)
    for name, subject, sequence, label in zip(train.metadata["file_name"], train.metadata["subject"],
                                              train.metadata["sequence"], train.labels):
        assert name.startswith(f"{subject}_{sequence}_") and sequence == "001"
        assert int(name[-12:-4]) in (3, 4, 5) and CK_NAMES[label] == CK_NAMES[labels[subject] - 1]
    assert canonical_mapping(train.class_names).tolist() == [5, -1, 2, 1, 3, 4, 0]


def test_ckplus_with_neutral_adds_each_first_frame(ck_tree):
    manual, data_dir, _ = ck_tree
    summary = prepare_dataset("ckplus/with_neutral", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == ["neutral"] + CK_NAMES
    assert sum(sum(c[:1]) for c in summary["class_counts"].values()) == 10
    test = load_split("ckplus/with_neutral", "test", data_dir)
    neutral = test.metadata["file_name"][test.labels == 0]
    assert len(neutral) == 1 and neutral[0].endswith("_001_00000001.png")


def test_ckplus_errors(tmp_path):
    manual, data_dir = str(tmp_path / "CK+"), str(tmp_path / "data")
    field_trees.ckplus(manual, subjects=("S005", "S010", "S011", "S014"))
    emotion = os.path.join(manual, "Emotion")
    os.rename(emotion, emotion + "_")
    with pytest.raises(LayoutError, match=r"CK\+ emotion labels not found: expected directory .*Emotion"):
        prepare_dataset("ckplus", data_dir=data_dir, manual_dir=manual)
    os.rename(emotion + "_", emotion)
    with open(os.path.join(emotion, "S005", "001", "S005_001_00000005_emotion.txt"), "w") as f:
        f.write("8.0\n")
    with open(os.path.join(emotion, "S010", "001", "S010_001_00000005_emotion.txt"), "w") as f:
        f.write("happy\n")
    os.rename(os.path.join(emotion, "S011", "001", "S011_001_00000005_emotion.txt"),
              os.path.join(emotion, "S011", "001", "S011_001_00000004_emotion.txt"))
    os.makedirs(os.path.join(emotion, "S099", "001"))
    with open(os.path.join(emotion, "S099", "001", "S099_001_00000003_emotion.txt"), "w") as f:
        f.write("1\n")
    with pytest.raises(LabelError) as info:
        prepare_dataset("ckplus", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("4 label problem(s) in CK+") and "\n" not in message
    assert "S005_001_00000005_emotion.txt: '8.0' is not an emotion code 1..7" in message
    assert "S010_001_00000005_emotion.txt: 'happy' is not an emotion code" in message
    assert ("S011_001_00000004_emotion.txt: labels frame 00000004, but the sequence ends at "
            "S011_001_00000005.png") in message
    assert "S099_001_00000003_emotion.txt: no images in" in message
    for subject in ("S005", "S010", "S011", "S099"):
        for name in os.listdir(os.path.join(emotion, subject, "001")):
            os.remove(os.path.join(emotion, subject, "001", name))
    os.rename(os.path.join(manual, "cohn-kanade-images", "S014", "001", "S014_001_00000001.png"),
              os.path.join(manual, "cohn-kanade-images", "S014", "001", "frame1.png"))
    with pytest.raises(LabelError, match=r"1 file name\(s\) outside the CK\+ naming scheme .*frame1.png: not "
                                         r"cohn-kanade-images/S005/001/S005_001_00000011.png"):
        prepare_dataset("ckplus", data_dir=data_dir, manual_dir=manual)


def test_jaffe(tmp_path):
    manual, data_dir = str(tmp_path / "jaffe"), str(tmp_path / "data")
    field_trees.jaffe(manual)
    summary = prepare_dataset("jaffe", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    assert summary["class_counts"] == {"train": [8] * 7, "validation": [1] * 7, "test": [1] * 7}
    assert len(summary["no_face"]) == 70  # noise: the centre crop is kept, and counted
    test = load_split("jaffe", "test", data_dir)
    assert test.images.shape == (7, 224, 224, 3)
    for name, subject, label in zip(test.metadata["file_name"], test.metadata["subject"], test.labels):
        assert name.startswith(subject + ".") and name[3:5] == field_trees.JAFFE_CODES[label]
    assert canonical_mapping(test.class_names).tolist() == [5, 2, 1, 3, 6, 4, 0]
    # A grey TIFF is stored as three equal channels.
    assert np.array_equal(test.images[0][..., 0], test.images[0][..., 2])


def test_jaffe_bad_names(tmp_path):
    manual = str(tmp_path / "jaffe")
    field_trees.jaffe(manual, subjects=("KA",), codes=("AN", "XX"))
    with pytest.raises(LabelError, match=r"1 file name\(s\) outside the JAFFE naming scheme .*KA.XX1.2.tiff: "
                                         r"unknown expression code 'XX'"):
        prepare_dataset("jaffe", data_dir=str(tmp_path / "d"), manual_dir=manual)
