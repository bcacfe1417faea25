"""RAF-DB builder on a fixture tree in the official layout, and its bad-input cases."""

import os

import numpy as np
import pytest

import data_trees
from hsnet_jax.data import load_split, prepare_dataset
from hsnet_jax.data.errors import CorruptImageError, LabelError, LayoutError


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("raf")
    data_trees.raf_db(str(root / "RAF-DB"))
    data_dir = str(root / "data")
    summary = prepare_dataset("raf_db", data_dir=data_dir, manual_dir=str(root / "RAF-DB"))
    return summary, data_dir


def test_counts_classes_and_splits(prepared):
    summary, data_dir = prepared
    assert summary["class_names"] == list(data_trees.RAF_DB_NAMES)
    assert summary["class_counts"] == {"train": [9] * 7, "validation": [1] * 7, "test": [3] * 7}
    assert summary["skipped_corrupt"] == [] and summary["no_face"] == []
    train, val, test = (load_split("raf_db", s, data_dir) for s in ("train", "validation", "test"))
    assert train.class_names == data_trees.RAF_DB_NAMES
    assert train.images.shape == (63, 100, 100, 3) and test.images.shape == (21, 100, 100, 3)
    assert all(f.startswith("test_") for f in test.metadata["file_name"])
    assert all(f.startswith("train_") for f in np.concatenate([train.metadata["file_name"], val.metadata["file_name"]]))
    assert not set(train.metadata["file_name"]) & set(val.metadata["file_name"])


def test_labels_and_pixels_match_the_files(prepared, tmp_path):
    _, data_dir = prepared
    train = load_split("raf_db", "train", data_dir)
    # train_00001..00010 have label 1 (surprise -> 0), train_00011.. label 2 (fear -> 1), ...
    for i in range(len(train)):
        number = int(train.metadata["file_name"][i][6:11])
        assert train.labels[i] == (number - 1) // 10
    # The stored pixels are the decoded JPEG.
    i = int(np.flatnonzero(train.metadata["file_name"] == "train_00012_aligned.jpg")[0])
    tree = data_trees.raf_db(str(tmp_path / "again"))
    from PIL import Image
    expected = np.asarray(Image.open(os.path.join(tree["image_dir"], "train_00012_aligned.jpg")))
    np.testing.assert_array_equal(train.images[i], expected)


def test_missing_manual_dir_names_path_and_site(tmp_path):
    with pytest.raises(LayoutError,
                       match=r"nowhere is missing or empty.*whdeng.cn.*basic/EmoLabel/list_patition_label.txt"):
        prepare_dataset("raf_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "nowhere"))


def test_missing_label_file(tmp_path):
    tree = data_trees.raf_db(str(tmp_path / "r"), 1, 1)
    os.remove(tree["label_file"])
    with pytest.raises(LayoutError, match=r"label file not found: expected .*list_patition_label.txt.*whdeng"):
        prepare_dataset("raf_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "r"))


def test_label_problems_are_all_listed_with_file_and_line(tmp_path):
    tree = data_trees.raf_db(str(tmp_path / "r"), 2, 1)
    os.remove(os.path.join(tree["image_dir"], "train_00003_aligned.jpg"))  # line 3 has no image
    data_trees.save(os.path.join(tree["image_dir"], "train_09999_aligned.jpg"), data_trees.image(0, (100, 100)))
    with open(tree["label_file"], "a") as f:
        f.write("test_00008.jpg 9\n")  # line 22: unknown label value
    with pytest.raises(LabelError) as info:
        prepare_dataset("raf_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "r"))
    message = str(info.value)
    assert message.startswith("3 label problem(s) in RAF-DB") and "\n" not in message
    assert "list_patition_label.txt:3: no image" in message
    assert "list_patition_label.txt:22: unknown label '9'" in message
    assert "train_09999_aligned.jpg: image without a line" in message


def test_duplicate_label_lines(tmp_path):
    tree = data_trees.raf_db(str(tmp_path / "r"), 1, 1)
    with open(tree["label_file"], "a") as f:
        f.write("train_00002.jpg 2\n")
    with pytest.raises(LabelError, match=r"list_patition_label.txt:15: train_00002.jpg again \(first at line 2\)"):
        prepare_dataset("raf_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "r"))


def test_corrupt_images_stop_with_a_list_or_are_skipped_and_counted(tmp_path):
    tree = data_trees.raf_db(str(tmp_path / "r"), 3, 1)
    bad = [os.path.join(tree["image_dir"], f) for f in ("train_00002_aligned.jpg", "test_00004_aligned.jpg")]
    with open(bad[0], "r+b") as f:  # truncated JPEG
        f.truncate(300)
    with open(bad[1], "wb") as f:  # not an image at all
        f.write(b"not a jpeg")
    with pytest.raises(CorruptImageError) as info:
        prepare_dataset("raf_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "r"))
    assert str(info.value).startswith("2 image(s) cannot be decoded") and all(b in str(info.value) for b in bad)
    summary = prepare_dataset("raf_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "r"), skip_corrupt=True)
    assert summary["skipped_corrupt"] == sorted(os.path.relpath(b, tmp_path / "r") for b in bad)
    counts = summary["class_counts"]
    assert sum(map(sum, counts.values())) == 7 * 4 - 2
    assert counts["test"][3] == 0 and sum(counts["test"]) == 6
