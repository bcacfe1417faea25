"""SFEW 2.0 and ExpW (faces in the wild) on trees in their official layouts: splits, box crops,
faces of one photo kept together, and every error."""

import os

import numpy as np
import pytest

import data_trees
import field_trees
from hsnet_jax.data import canonical_mapping, load_split, prepare_dataset
from hsnet_jax.data.errors import LabelError, LayoutError
from hsnet_jax.faces.crops import crop_box
from hsnet_jax.data.reading import load_rgb

WILD_SEVEN = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def test_sfew_val_is_the_test_split(tmp_path):
    manual, data_dir = str(tmp_path / "SFEW_2"), str(tmp_path / "data")
    field_trees.sfew(manual)
    summary = prepare_dataset("sfew", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == [e.lower() for e in field_trees.SFEW_EMOTIONS]
    assert summary["class_counts"] == {"train": [9] * 7, "validation": [1] * 7, "test": [1] * 7}
    test = load_split("sfew", "test", data_dir)
    assert test.images.shape == (7, 128, 128, 3)
    assert all(f.startswith("Val/") and f.split("/")[1].lower() == test.class_names[label]
               for f, label in zip(test.metadata["file_name"], test.labels))
    assert canonical_mapping(test.class_names).tolist() == [5, 2, 1, 3, 6, 4, 0]


def test_sfew_errors(tmp_path):
    manual, data_dir = str(tmp_path / "SFEW_2"), str(tmp_path / "data")
    field_trees.sfew(manual, train=2, val=0)
    with pytest.raises(LayoutError, match=r"SFEW Val aligned faces not found: expected directory .*Val_Aligned_Faces"):
        prepare_dataset("sfew", data_dir=data_dir, manual_dir=manual)
    field_trees.sfew(manual, train=2, val=1)
    faces = os.path.join(manual, "Train", "Train_Aligned_Faces")
    data_trees.save(os.path.join(faces, "Contempt", "a.png"), data_trees.image(0, (8, 8)))
    data_trees.save(os.path.join(manual, "Train", "b.png"), data_trees.image(0, (8, 8)))
    with pytest.raises(LabelError) as info:
        prepare_dataset("sfew", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("2 file name(s) outside the SFEW naming scheme") and "\n" not in message
    assert "Contempt/a.png: unknown emotion folder 'Contempt'" in message and "Train/b.png: not in" in message
    summary = prepare_dataset("sfew", data_dir=data_dir, manual_dir=manual, skip_unparseable=True)
    assert len(summary["skipped_unparseable"]) == 2


def test_expw_crops_every_face_and_splits_by_photo(tmp_path):
    manual, data_dir = str(tmp_path / "ExpW"), str(tmp_path / "data")
    faces = field_trees.expw(manual)
    summary = prepare_dataset("expw", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == WILD_SEVEN
    assert sum(map(sum, summary["class_counts"].values())) == len(faces) == 27
    splits = {s: load_split("expw", s, data_dir) for s in ("train", "validation", "test")}
    photos = [{f.split("#")[0] for f in split.metadata["file_name"]} for split in splits.values()]
    assert [len(p) for p in photos] == [16, 2, 2] and len(set.union(*photos)) == 20  # no photo in two splits
    train = splits["train"]
    i = list(train.metadata["file_name"]).index("angry_actor_100.jpg#1")
    assert train.metadata["face_id"][i] == "1" and train.metadata["confidence"][i] == "50.5000"
    assert train.labels[i] == 1  # (photo 0 + face 1) % 7
    photo = load_rgb(os.path.join(manual, "image", "origin", "angry_actor_100.jpg"))
    np.testing.assert_array_equal(train.images[i], crop_box(photo, (36, 24, 66, 58), 112))  # left top right bottom


def test_expw_errors(tmp_path):
    manual, data_dir = str(tmp_path / "ExpW"), str(tmp_path / "data")
    field_trees.expw(manual, photos=4)
    label_file = os.path.join(manual, "label", "label.lst")
    os.rename(label_file, label_file + ".bak")
    with pytest.raises(LayoutError, match=r"ExpW needs .*label/label.lst and .*image/origin/"):
        prepare_dataset("expw", data_dir=data_dir, manual_dir=manual)
    with open(label_file + ".bak") as f:
        lines = f.read().splitlines()
    lines[0] = lines[0][:-1] + "7"  # label out of range
    lines[1] = lines[1].replace(" 58 ", " 4 ")  # bottom above top
    lines.append(lines[2])  # the same face again
    lines.append("missing.jpg 0 1 1 10 10 9.9 3")
    lines.append("sad_actor_102.jpg 0 1 1 10 10 3")
    lines.append("sad_actor_102.jpg 1 1 one 10 10 9.9 3")
    with open(label_file, "w") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(LabelError) as info:
        prepare_dataset("expw", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("6 label problem(s) in ExpW") and "\n" not in message
    assert "label.lst:1: expression label '7' out of range (0..6)" in message
    assert "label.lst:2: empty face box (top 24, left 36, right 66, bottom 4)" in message
    assert "label.lst:7: face 0 of happy_actor_101.jpg again (first at line 3)" in message
    assert "label.lst:8: no image" in message and "missing.jpg" in message
    assert "label.lst:9: 7 fields, expected 8" in message
    assert "label.lst:10: could not convert string to float: 'one'" in message
