"""KDEF builder: official folder layout and file names, MTCNN crops at 256, subject-disjoint."""

import os

import pytest

import data_trees
from hsnet_jax.data import canonical_mapping, load_split, prepare_dataset
from hsnet_jax.data.errors import LabelError

KDEF_NAMES = ("afraid", "angry", "disgusted", "happy", "neutral", "sad", "surprised")


def test_kdef_configs(tmp_path):
    manual, data_dir = str(tmp_path / "download"), str(tmp_path / "data")
    # Two of the seven expressions keep MTCNN's work small; the class list is still all seven.
    data_trees.kdef(manual, people=("F01", "F02", "M01", "M02", "M03"), angles=("S",), codes=("AF", "HA"))
    data_trees.kdef(manual, people=("F01",), angles=("HL",), codes=("AF", "HA"))
    summary = prepare_dataset("kdef", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == list(KDEF_NAMES) and summary["no_face"] == []
    # 6 images per expression: round(6 * 0.2) = 1 test, round(5 * 0.2) = 1 validation, 4 train.
    assert summary["class_counts"] == {"train": [4, 0, 0, 4, 0, 0, 0], "validation": [1, 0, 0, 1, 0, 0, 0],
                                       "test": [1, 0, 0, 1, 0, 0, 0]}
    train = load_split("kdef", "train", data_dir)
    assert train.images.shape == (8, 256, 256, 3)
    codes = dict(zip(data_trees.KDEF_CODES, KDEF_NAMES))
    for i, name in enumerate(train.metadata["file_name"]):
        assert train.class_names[train.labels[i]] == codes[name[4:6]]
        assert train.metadata["subject"][i] == name[1:4] and train.metadata["angle"][i] == name[6:-4]
    assert canonical_mapping(train.class_names).tolist() == [1, 5, 2, 3, 6, 4, 0]

    prepare_dataset("kdef/frontal_subject_disjoint", data_dir=data_dir, manual_dir=manual)
    splits = {s: load_split("kdef/frontal_subject_disjoint", s, data_dir) for s in ("train", "validation", "test")}
    subjects = {s: set(v.metadata["subject"]) for s, v in splits.items()}
    assert [len(subjects[s]) for s in ("train", "validation", "test")] == [3, 1, 1]
    assert len(set.union(*subjects.values())) == 5
    assert all({"S"} == set(v.metadata["angle"]) for v in splits.values())


def test_bad_kdef_names(tmp_path):
    manual = str(tmp_path / "download")
    data_trees.kdef(manual, people=("F01",), angles=("S",), codes=("NE",))
    data_trees.save(os.path.join(manual, "KDEF", "AF01", "AF01XXS.JPG"), data_trees.image(0, (40, 30)))
    with pytest.raises(LabelError, match=r"AF01XXS.JPG: unknown expression code 'XX'"):
        prepare_dataset("kdef", data_dir=str(tmp_path / "d"), manual_dir=manual)
