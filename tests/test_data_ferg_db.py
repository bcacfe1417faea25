"""FERG-DB builder: character/expression folder layout, 80/10/10 stratified splits."""

import os

import pytest

import data_trees
from hsnet_jax.data import load_split, prepare_dataset
from hsnet_jax.data.errors import LabelError, LayoutError


def test_ferg_db(tmp_path):
    data_trees.ferg_db(str(tmp_path / "download"), characters=("aia", "ray"), per_expression=5)
    summary = prepare_dataset("ferg_db", data_dir=str(tmp_path / "data"), manual_dir=str(tmp_path / "download"))
    assert summary["class_names"] == list(data_trees.FERG_EXPRESSIONS)
    # 10 per class: 1 test, round(9 / 9) = 1 validation, 8 train.
    assert summary["class_counts"] == {"train": [8] * 7, "validation": [1] * 7, "test": [1] * 7}
    test = load_split("ferg_db", "test", str(tmp_path / "data"))
    assert test.images.shape == (7, 256, 256, 3)
    for i, name in enumerate(test.metadata["file_name"]):
        character, expression, _ = name[:-4].split("_")
        assert test.metadata["character"][i] == character and test.class_names[test.labels[i]] == expression


def test_ferg_db_bad_layout(tmp_path):
    root = tmp_path / "download"
    data_trees.ferg_db(str(root), characters=("aia",), per_expression=1)
    data_trees.save(str(root / "FERG_DB_256" / "aia" / "aia_bored" / "aia_bored_1.png"), data_trees.image(0, (8, 8)))
    data_trees.save(str(root / "FERG_DB_256" / "aia" / "stray.png"), data_trees.image(0, (8, 8)))
    with pytest.raises(LabelError, match=r"2 file name\(s\) outside the FERG-DB naming scheme .*--skip_unparseable.*"
                                         r"unknown expression 'bored'.*stray.png: not in <character>"):
        prepare_dataset("ferg_db", data_dir=str(tmp_path / "d"), manual_dir=str(root))
    os.makedirs(tmp_path / "empty" / "FERG_DB_256")
    with pytest.raises(LayoutError, match="no FERG-DB images found"):
        prepare_dataset("ferg_db", data_dir=str(tmp_path / "d"), manual_dir=str(tmp_path / "empty"))
