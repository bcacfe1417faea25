"""Preparation on downloads as people unpack them: macOS debris, stray names, other folder
layouts, nothing left to split, and failed runs that must leave nothing behind.

Every case runs a real TFDS build on a fixture tree in the database's real layout.
"""

import glob
import os
import subprocess
import sys

import pytest

import data_trees
from hsnet_jax.data import load_split, prepare_dataset
from hsnet_jax.data.errors import DatasetNotPreparedError, LabelError, LayoutError
from hsnet_jax.data.preparation import format_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree(database: str, root: str) -> list[str]:
    """A small tree of `database` under `root`; returns its image paths."""
    if database == "raf_db":
        data_trees.raf_db(root, 2, 1)
        return sorted(glob.glob(os.path.join(root, "basic", "Image", "aligned", "*.jpg")))
    if database == "rafd":  # noise, 48x48: MTCNN finds no face quickly (centre crops)
        return data_trees.rafd(root, subjects=(1, 2), angles=("090",), emotions=("happy", "sad"),
                               size=(48, 48), face=False)
    if database == "kdef":
        return data_trees.kdef(root, people=("F01", "M01"), angles=("S",), codes=("NE",))
    if database == "ferg_db":
        return data_trees.ferg_db(root, characters=("aia",), per_expression=1)
    return data_trees.image_folder(root)


def prepare(database, manual, data_dir, **flags):
    return prepare_dataset(database, data_dir=str(data_dir), manual_dir=str(manual), **flags)


def cli(*args):
    result = subprocess.run([sys.executable, "-m", "hsnet_jax.prepare", *args], cwd=ROOT,
                            capture_output=True, text=True)
    return result.returncode, result.stdout, result.stderr


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


DATABASES = ["raf_db", "rafd", "kdef", "ferg_db", "image_folder"]


@pytest.mark.parametrize("database", DATABASES)
def test_macos_and_hidden_entries_are_ignored_and_counted(tmp_path, database):
    manual = str(tmp_path / "download")
    images = tree(database, manual)
    ignored = data_trees.macos_debris(manual, images)
    if database == "image_folder":  # a hidden folder where a class folder would be
        data_trees.save(os.path.join(manual, "train", ".ipynb_checkpoints", "x.png"), data_trees.image(0, (8, 8)))
        ignored = sorted(ignored + ["train/.ipynb_checkpoints/"])
    summary = prepare(database, manual, tmp_path / "d")
    assert summary["ignored"] == ignored
    assert f"ignored (hidden, __MACOSX/ and ._ sidecar entries): {len(ignored)}" in format_summary(summary).splitlines()
    assert sum(map(sum, summary["class_counts"].values())) == len(images)
    assert summary["skipped_corrupt"] == [] and summary["skipped_unparseable"] == []
    if database == "image_folder":
        assert summary["class_names"] == ["cat", "dog"]


# Per database: files named outside its scheme, placed in its real layout.
STRAYS = {
    "raf_db": ["basic/Image/aligned/IMG_0001.jpg"],
    "rafd": ["portrait.jpg", "Rafd090_01_Caucasian_female_bored_frontal.jpg"],
    "kdef": ["KDEF/AF01/AF01XXS.JPG", "KDEF/AF01/AF01NES copy.JPG"],
    "ferg_db": ["FERG_DB_256/aia/stray.png", "FERG_DB_256/aia/aia_bored/aia_bored_1.png"],
    "image_folder": ["train/cover.jpg"],
}


@pytest.mark.parametrize("database", DATABASES)
def test_names_outside_the_scheme_stop_or_are_skipped_and_listed(tmp_path, database):
    manual = str(tmp_path / "download")
    images = tree(database, manual)
    for i, stray in enumerate(STRAYS[database]):
        data_trees.save(os.path.join(manual, stray), data_trees.image(i, (48, 48)))
    with pytest.raises(LabelError) as info:
        prepare(database, manual, tmp_path / "d")
    message = str(info.value)
    assert f"{len(STRAYS[database])} file name(s) outside the" in message and "--skip_unparseable" in message
    assert all(os.path.join(manual, stray) in message for stray in STRAYS[database])
    summary = prepare(database, manual, tmp_path / "d", skip_unparseable=True)
    assert summary["skipped_unparseable"] == sorted(STRAYS[database])
    assert sum(map(sum, summary["class_counts"].values())) == len(images)


def test_skip_unparseable_on_the_command_line(tmp_path):
    manual = str(tmp_path / "download")
    tree("ferg_db", manual)
    data_trees.save(os.path.join(manual, "FERG_DB_256", "aia", "stray.png"), data_trees.image(0, (48, 48)))
    args = ("--dataset", "ferg_db", "--manual_dir", manual, "--data_dir", str(tmp_path / "d"))
    code, _, stderr = cli(*args)
    assert code == 1 and "stray.png: not in <character>/<character>_<expression>/" in one_error_line(stderr)
    code, stdout, stderr = cli(*args, "--skip_unparseable")
    assert code == 0, stderr
    assert "skipped (file name outside the naming scheme): 1" in stdout.splitlines()


LAYOUTS = {
    "flat": lambda name: "",
    "per subject": lambda name: name.split("_")[1],
    "angle/emotion": lambda name: os.path.join(name[4:7], name.split("_")[4]),
}


def test_same_files_give_the_same_splits_in_any_layout(tmp_path):
    files = {}
    for layout, folder in LAYOUTS.items():
        manual, data_dir = tmp_path / layout / "RaFD", tmp_path / layout / "data"
        data_trees.rafd(str(manual), subjects=(1, 2, 3), angles=("090", "045"), folder=folder,
                        size=(48, 48), face=False)
        prepare("rafd", manual, data_dir)
        files[layout] = {s: sorted(load_split("rafd", s, str(data_dir)).metadata["file_name"])
                         for s in ("train", "validation", "test")}
    assert [len(files["flat"][s]) for s in ("train", "validation", "test")] == [32, 8, 8]
    assert files["flat"] == files["per subject"] == files["angle/emotion"]


def test_a_file_name_in_two_folders_is_an_error_naming_both(tmp_path):
    manual = tmp_path / "RaFD"
    first = data_trees.rafd(str(manual), subjects=(1,), angles=("090",), emotions=("happy",),
                            size=(48, 48), face=False)[0]
    second = manual / "copy" / os.path.basename(first)
    data_trees.save(str(second), data_trees.image(0, (48, 48)))
    with pytest.raises(LabelError, match="Rafd090_01_Caucasian_female_happy_frontal.jpg is both "
                                         f"{first} and {second}"):
        prepare("rafd", manual, tmp_path / "d")


def corrupt_all(paths):
    for path in paths:
        with open(path, "wb") as f:
            f.write(b"not an image")


@pytest.mark.parametrize("database", DATABASES)
def test_everything_skipped_as_corrupt_is_one_error(tmp_path, database):
    manual = str(tmp_path / "download")
    images = tree(database, manual)
    corrupt_all(images)
    # Splits are made before decoding and streamed: the first split generated (train) stops it.
    with pytest.raises(LayoutError, match=r"all \d+ .* images of the train split .* were skipped as undecodable"):
        prepare(database, manual, tmp_path / "d", skip_corrupt=True)
    with pytest.raises(DatasetNotPreparedError):
        load_split(database, "train", str(tmp_path / "d"))


def test_everything_skipped_as_unparseable_is_one_error(tmp_path):
    manual = tmp_path / "KDEF"
    data_trees.save(str(manual / "KDEF" / "AF01" / "AF01XXS.JPG"), data_trees.image(0, (48, 48)))
    with pytest.raises(LayoutError, match=r"no KDEF images found under .* \(1 skipped as unparseable\)"):
        prepare("kdef", manual, tmp_path / "d", skip_unparseable=True)


def test_raf_db_label_file_with_nothing_to_split(tmp_path):
    paths = data_trees.raf_db(str(tmp_path / "r"), 1, 1)
    with open(paths["label_file"], "w"):
        pass  # empty
    for path in glob.glob(os.path.join(paths["image_dir"], "*")):
        os.remove(path)
    code, _, stderr = cli("--dataset", "raf_db", "--manual_dir", str(tmp_path / "r"), "--data_dir", str(tmp_path / "d"))
    assert code == 1 and f"RAF-DB label file {paths['label_file']} lists no images" in one_error_line(stderr)
    paths = data_trees.raf_db(str(tmp_path / "t"), 0, 2)  # test_ lines only
    with pytest.raises(LayoutError, match=r"no RAF-DB images left for the train split under .*t \(kept: test 14;"):
        prepare("raf_db", tmp_path / "t", tmp_path / "d")


def test_rafd_frontal_without_frontal_images_says_so(tmp_path):
    manual = tmp_path / "RaFD"
    data_trees.rafd(str(manual), subjects=(1,), angles=("045", "135"), emotions=("happy",), size=(48, 48), face=False)
    with pytest.raises(LayoutError, match=r"2 RaFD images found under .*, but none at angle 090 \(config 'frontal'\); "
                                          r"angles found: 045 \(1\), 135 \(1\)"):
        prepare("rafd/frontal", manual, tmp_path / "d")


def test_image_folder_with_empty_train_then_filled_prints_the_new_table(tmp_path):
    pets, data_dir = tmp_path / "pets", str(tmp_path / "d")
    data_trees.image_folder(str(pets), {("test", "cat"): 1, ("test", "dog"): 2})
    os.makedirs(pets / "train" / "cat")
    args = ("--dataset", "image_folder", "--manual_dir", str(pets), "--data_dir", data_dir)
    code, stdout, stderr = cli(*args)
    assert code == 1 and not any(line.startswith("class") for line in stdout.splitlines())  # no table
    assert "no image_folder images left for the train split" in one_error_line(stderr)
    with pytest.raises(DatasetNotPreparedError):
        load_split("image_folder", "test", data_dir)
    data_trees.image_folder(str(pets), {("train", "cat"): 2, ("train", "dog"): 1})
    code, stdout, stderr = cli(*args)
    assert code == 0, stderr
    assert "total 3 3" in [" ".join(line.split()) for line in stdout.splitlines()]


def test_a_failed_preparation_leaves_nothing_behind(tmp_path):
    paths = data_trees.raf_db(str(tmp_path / "r"), 1, 1)
    bad = os.path.join(paths["image_dir"], "train_00003_aligned.jpg")
    corrupt_all([bad])
    with pytest.raises(Exception, match="cannot be decoded"):
        prepare("raf_db", tmp_path / "r", tmp_path / "d")
    leftovers = [f for _, dirs, files in os.walk(tmp_path / "d") for f in dirs + files]
    assert not [f for f in leftovers if "incomplete" in f or f.endswith((".json", ".array_record"))]
    with pytest.raises(DatasetNotPreparedError):
        load_split("raf_db", "train", str(tmp_path / "d"))
    data_trees.save(bad, data_trees.image(0, (100, 100)))
    summary = prepare("raf_db", tmp_path / "r", tmp_path / "d")
    assert sum(map(sum, summary["class_counts"].values())) == 14
