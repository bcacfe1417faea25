"""image_folder builder: classes and splits as on disk."""

import pytest

import data_trees
from hsnet_jax.data import load_split, prepare_dataset
from hsnet_jax.data.errors import CorruptImageError, LayoutError, MissingSplitError


def test_image_folder(tmp_path):
    data_trees.image_folder(str(tmp_path / "pets"))
    summary = prepare_dataset("image_folder", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "pets"))
    assert summary["class_names"] == ["cat", "dog"]
    assert summary["class_counts"] == {"train": [3, 2], "test": [1, 2]}
    train = load_split("image_folder", "train", str(tmp_path / "data"))
    assert train.class_names == ("cat", "dog") and train.images.shape == (5, 100, 100, 3)
    assert sorted(train.metadata["file_name"]) == ["train/cat/cat0.jpg", "train/cat/cat1.png", "train/cat/cat2.jpg",
                                                    "train/dog/dog0.jpg", "train/dog/dog1.png"]
    assert all(train.class_names[label] in f for label, f in zip(train.labels, train.metadata["file_name"]))
    with pytest.raises(MissingSplitError, match="has no split 'validation'; splits: train, test"):
        load_split("image_folder", "validation", str(tmp_path / "data"))


def test_image_folder_bad_layouts(tmp_path):
    data_trees.image_folder(str(tmp_path / "a"))
    data_trees.save(str(tmp_path / "a" / "training" / "x" / "x.jpg"), data_trees.image(0, (8, 8)))
    with pytest.raises(LayoutError, match=r"must hold train/.*found test, train, training"):
        prepare_dataset("image_folder", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "a"))
    data_trees.image_folder(str(tmp_path / "b"))
    (tmp_path / "b" / "train" / "cat" / "notes.txt").write_text("not an image")
    with pytest.raises(CorruptImageError, match=r"notes.txt"):
        prepare_dataset("image_folder", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "b"))
