"""AffectNet builder on trees in its official CSV layout and the newer npy layout: configs 7 and 8,
the excluded codes, box crops, landmarks in crop coordinates, fingerprints, and every error."""

import os

import numpy as np
import pytest
from PIL import Image

import data_trees
import field_trees
from hsnet_jax.data import canonical_mapping, load_split, open_split, prepare_dataset
from hsnet_jax.data.boxes import load_face
from hsnet_jax.data.errors import LabelError, LayoutError
from hsnet_jax.faces.crops import crop_box
from hsnet_jax.data.preparation import fingerprint_download, format_summary
from hsnet_jax.data.reading import load_rgb

NAMES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")


@pytest.fixture(scope="module")
def csv_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("affectnet")
    tree = field_trees.affectnet(str(root / "AffectNet"))
    return str(root / "AffectNet"), str(root / "data"), tree


def test_config_7_excludes_contempt_and_codes_8_to_10(csv_tree):
    manual, data_dir, tree = csv_tree
    summary = prepare_dataset("affectnet/7", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == list(NAMES[:7])
    # training.csv: codes 0-10 twice -> 2 per class, one of them to validation (10%, rounded) ...
    assert summary["class_counts"] == {"train": [2] * 7, "test": [1] * 7}
    assert summary["excluded"] == {"contempt (config 7)": 3, "none": 2, "non-face": 2, "uncertain": 2}
    table = format_summary(summary)
    assert "excluded (none): 2" in table and f"fingerprint train: {summary['fingerprints']['train']}" in table
    test = load_split("affectnet/7", "test", data_dir)
    # The official validation list is the test split, its file names the CSV's subDirectory_filePath.
    assert sorted(test.metadata["file_name"]) == sorted(rel for rel, code in tree["rows"]["validation.csv"] if code < 7)
    assert canonical_mapping(test.class_names).tolist() == [6, 3, 4, 0, 1, 2, 5]


def test_config_8_crops_from_the_box_and_keeps_valence_arousal_landmarks(csv_tree):
    manual, data_dir, tree = csv_tree
    summary = prepare_dataset("affectnet/8", data_dir=data_dir, manual_dir=manual)
    assert summary["class_counts"]["test"] == [1] * 8 and summary["excluded"] == {
        "none": 2, "non-face": 2, "uncertain": 2}
    train = load_split("affectnet/8", "train", data_dir)
    assert train.images.shape[1:] == (112, 112, 3)
    i = 0
    rel = train.metadata["file_name"][i]
    photo = load_rgb(os.path.join(manual, "Manually_Annotated_Images", rel))
    np.testing.assert_array_equal(train.images[i], crop_box(photo, (12, 10, 44, 46), 112))
    assert train.metadata["arousal"][i] == "-0.25" and float(train.metadata["valence"][i]) in (0, .1, .2, .3, .4)
    points = np.asarray(train.metadata["landmarks"][i].split(";"), float).reshape(-1, 2)
    # Point 0 is the box's centre: the crop's centre (within the crop's rounding to whole pixels).
    assert points.shape == (68, 2) and np.abs(points[0] - 56).max() < 2
    assert train.fingerprint == summary["fingerprints"]["train"]
    assert open_split("affectnet/8", "train", data_dir).first(3).fingerprint == ""
    assert fingerprint_download("affectnet/8", data_dir, manual) == summary["fingerprints"]


def test_the_fingerprint_follows_the_bytes_not_the_folder(tmp_path, csv_tree):
    manual, data_dir, tree = csv_tree
    before = fingerprint_download("affectnet/8", data_dir, manual)
    import shutil
    copy = str(tmp_path / "elsewhere")
    shutil.copytree(manual, copy)
    assert fingerprint_download("affectnet/8", data_dir, copy) == before
    rel = tree["rows"]["validation.csv"][0][0]
    data_trees.save(os.path.join(copy, "Manually_Annotated_Images", rel), data_trees.image(999, (64, 64)))
    after = fingerprint_download("affectnet/8", data_dir, copy)
    assert after["train"] == before["train"] and after["test"] != before["test"]


def test_large_jpegs_decode_at_reduced_scale_to_the_same_crop(tmp_path):
    path = data_trees.save(str(tmp_path / "big.jpg"), np.asarray(
        Image.fromarray(data_trees.image(1, (100, 100), face=True)).resize((800, 800), Image.BILINEAR)))
    box = (200.0, 160.0, 600.0, 640.0)  # side 480 x 1.2: decoded at 1/4 for 112
    full = crop_box(load_rgb(path), box, 112).astype(float)
    assert np.abs(load_face(path, box, 112).astype(float) - full).mean() < 3


def test_newer_npy_layout(tmp_path):
    manual, data_dir = str(tmp_path / "AffectNet"), str(tmp_path / "data")
    field_trees.affectnet_sets(manual)
    summary = prepare_dataset("affectnet/7", data_dir=data_dir, manual_dir=manual)
    assert summary["class_counts"] == {"train": [3] * 7, "test": [1] * 7} and summary["excluded"] == {
        "contempt (config 7)": 4}
    test = load_split("affectnet/7", "test", data_dir)
    assert test.images.shape == (7, 112, 112, 3)
    assert set(test.metadata["file_name"]) == {f"val_set/{n}.jpg" for n in range(7)}
    assert set(test.metadata["valence"]) == {"0.5"} and set(test.metadata["arousal"]) == {"-0.5"}
    points = np.asarray(test.metadata["landmarks"][0].split(";"), float).reshape(-1, 2)
    np.testing.assert_allclose(points[0], (56, 56), atol=0.01)  # 48x48 face, centre -> stored 112's centre


def _rewrite(path, edit):
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(edit(lines)) + "\n")


def test_errors_are_one_line_and_list_every_bad_row(tmp_path):
    manual, data_dir = str(tmp_path / "AffectNet"), str(tmp_path / "data")
    os.makedirs(manual)
    with open(os.path.join(manual, "readme.txt"), "w") as f:
        f.write("x")
    with pytest.raises(LayoutError, match=r"no AffectNet file lists under .*Manually_Annotated_file_lists"):
        prepare_dataset("affectnet", data_dir=data_dir, manual_dir=manual)
    tree = field_trees.affectnet(manual, {"training.csv": [0, 1, 2, 3], "validation.csv": [0, 1]})
    training, validation = (os.path.join(tree["lists"], n) for n in ("training.csv", "validation.csv"))
    os.remove(validation)
    with pytest.raises(LayoutError, match=r"AffectNet file list not found: expected .*validation.csv"):
        prepare_dataset("affectnet", data_dir=data_dir, manual_dir=manual)
    field_trees.affectnet(manual, {"training.csv": [0, 1, 2, 3], "validation.csv": [0, 1]})
    _rewrite(validation, lambda lines: [lines[0].replace("expression", "emotion")] + lines[1:])
    with pytest.raises(LayoutError, match=r"validation.csv does not start with AffectNet's header .*emotion"):
        prepare_dataset("affectnet", data_dir=data_dir, manual_dir=manual)
    field_trees.affectnet(manual, {"training.csv": [0, 1, 2, 3], "validation.csv": [0, 1]})

    def damage(lines):
        lines[1] = lines[1].replace(",0,0.000,", ",11,0.000,")  # code out of range
        lines[2] = lines[2].split('"')[0] + '"1;2;3",1,0.1,0.1'  # 3 landmark values
        lines[3] = lines[3].replace(",12,10,", ",x,10,")  # not a number
        return lines + ["999/missing.jpg,1,1,10,10,\"" + ";".join(["1"] * 136) + "\",3,0,0", "only,three,fields"]
    _rewrite(training, damage)
    with pytest.raises(LabelError) as info:
        prepare_dataset("affectnet", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("5 label problem(s) in AffectNet") and "\n" not in message
    assert "training.csv:2: expression '11' out of range (0..10)" in message
    assert "training.csv:3: face box 32x36 or 3 landmark values" in message
    assert "training.csv:4: could not convert string to float: 'x'" in message
    assert "training.csv:6: no image" in message and "missing.jpg" in message
    assert "training.csv:7: 3 fields, expected 9" in message


def test_npy_layout_errors(tmp_path):
    manual, data_dir = str(tmp_path / "AffectNet"), str(tmp_path / "data")
    field_trees.affectnet_sets(manual, {"train_set": [0, 1, 2], "val_set": [0]})
    os.remove(os.path.join(manual, "train_set", "images", "1.jpg"))
    os.remove(os.path.join(manual, "train_set", "annotations", "2_exp.npy"))
    np.save(os.path.join(manual, "train_set", "annotations", "0_exp.npy"), np.asarray("12"))
    with pytest.raises(LabelError) as info:
        prepare_dataset("affectnet", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("3 label problem(s) in AffectNet")
    assert "1_exp.npy: no image 1.jpg" in message and "2.jpg: no 2_exp.npy" in message
    assert "0_exp.npy: expression '12' out of range" in message


@pytest.mark.slow
def test_training_streams_from_a_prepared_affectnet_tree(tmp_path, env):
    """Prepared from the official layout, trained with the `stream` placement end to end; the
    run's config.json and its evaluation report (the test split, at the end) carry the splits'
    fingerprints."""
    import json
    import sys

    from train_runs import run

    manual, data_dir = str(tmp_path / "AffectNet"), str(tmp_path / "data")
    field_trees.affectnet(manual, {"training.csv": list(range(7)) * 10, "validation.csv": list(range(7))})
    summary = prepare_dataset("affectnet/7", data_dir=data_dir, manual_dir=manual)
    assert [sum(summary["class_counts"][s]) for s in ("train", "validation", "test")] == [63, 7, 7]
    workdir = tmp_path / "run"
    result = run([sys.executable, "-m", "hsnet_jax.train", "--config", "configs/affectnet7.py", "--workdir",
                  str(workdir), f"--config.data_dir={data_dir}", "--config.image_size=75",
                  "--config.max_train_examples=16", "--config.batch_size=8", "--config.num_epochs=1",
                  "--config.steps_per_dispatch=1", "--config.eval_batch_size=16",
                  "--config.data_placement=stream"], env, timeout=1200)  # its compile: 5 min at load 27
    assert result.returncode == 0, result.stderr[-3000:]
    assert "data placement: stream (config.data_placement)" in result.stderr
    config = json.loads((workdir / "config.json").read_text())
    # max_train_examples: the run trains on a part of the split, which the split's fingerprint does not name
    assert config["data_fingerprints"] == {"train": "", "validation": summary["fingerprints"]["validation"]}
    report = json.loads((workdir / "eval" / "test_metrics.json").read_text())
    assert report["fingerprint"] == summary["fingerprints"]["test"] and report["num_examples"] == 7


def test_prepare_command_prints_fingerprints_and_fingerprint_only_prepares_nothing(tmp_path, capsys):
    from hsnet_jax.prepare import main

    manual, data_dir = str(tmp_path / "AffectNet"), str(tmp_path / "data")
    field_trees.affectnet_sets(manual, {"train_set": list(range(8)) * 2, "val_set": list(range(8))})
    assert main(["--dataset", "affectnet", "--manual_dir", manual, "--data_dir", data_dir, "--fingerprint_only"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in lines] == ["fingerprint train", "fingerprint test"]
    assert not os.path.exists(os.path.join(data_dir, "affectnet"))  # nothing prepared
    assert main(["--dataset", "affectnet", "--manual_dir", manual, "--data_dir", data_dir]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-2:] == lines and "excluded (contempt (config 7)): 3" in table
