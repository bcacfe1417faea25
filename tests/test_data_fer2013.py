"""FER2013 and FERPlus on generated fer2013.csv / fer2013new.csv: splits, file names, pixels,
Microsoft's label rules in all four modes, exclusions counted, and every error."""

import os

import numpy as np
import pytest

import field_trees
from hsnet_jax.data import canonical_mapping, load_split, prepare_dataset
from hsnet_jax.data.errors import LabelError, LayoutError
from hsnet_jax.data.ferplus import ferplus_target
from hsnet_jax.data.preparation import fingerprint_download

FERPLUS_NAMES = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]


def test_fer2013_splits_names_and_pixels(tmp_path):
    manual, data_dir = str(tmp_path / "fer2013"), str(tmp_path / "data")
    field_trees.fer2013(manual)
    summary = prepare_dataset("fer2013", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert summary["class_counts"] == {"train": [2] * 7, "validation": [1] * 7, "test": [1] * 7}
    test = load_split("fer2013", "test", data_dir)
    assert test.images.shape == (7, 48, 48, 3)
    assert sorted(test.metadata["file_name"]) == [f"fer{i:07d}.png" for i in range(3, 28, 4)]  # rows 3, 7, ...
    with open(os.path.join(manual, "fer2013.csv")) as f:
        row = f.read().splitlines()[4]  # row 3 (0-based) after the header
    pixels = np.asarray(row.split(",")[1].split(), np.uint8).reshape(48, 48)
    first = list(test.metadata["file_name"]).index("fer0000003.png")
    assert all((test.images[first][..., c] == pixels).all() for c in range(3))
    assert canonical_mapping(test.class_names).tolist() == [5, 2, 1, 3, 4, 0, 6]
    assert fingerprint_download("fer2013", data_dir, manual) == summary["fingerprints"] == {
        s: load_split("fer2013", s, data_dir).fingerprint for s in ("train", "validation", "test")}


def test_fer2013_errors(tmp_path):
    manual, data_dir = str(tmp_path / "fer2013"), str(tmp_path / "data")
    os.makedirs(manual)
    with open(os.path.join(manual, "icml_face_data.csv"), "w") as f:
        f.write("emotion, Usage, pixels\n")
    with pytest.raises(LayoutError, match=r"fer2013.csv not found: expected .*fer2013.csv. Download fer2013.tar.gz"):
        prepare_dataset("fer2013", data_dir=data_dir, manual_dir=manual)
    os.rename(os.path.join(manual, "icml_face_data.csv"), os.path.join(manual, "fer2013.csv"))
    with pytest.raises(LayoutError, match=r"does not start with FER2013's header emotion,pixels,Usage "
                                          r"\(found emotion, Usage, pixels\)"):
        prepare_dataset("fer2013", data_dir=data_dir, manual_dir=manual)
    field_trees.fer2013(manual, [(0, "Training"), (7, "Training"), (1, "Public"), (2, "PrivateTest"), (3, "Training")])
    path = os.path.join(manual, "fer2013.csv")
    with open(path) as f:
        lines = f.read().splitlines()
    lines[4] = lines[4].replace(",", ",256 ", 1)  # 2,305 values, one of them 256
    lines[5] = lines[5].split(",")[0] + ",1 2 x," + lines[5].split(",")[2]
    with open(path, "w") as f:
        f.write("\n".join(lines + ["3,1 2"]) + "\n")
    with pytest.raises(LabelError) as info:
        prepare_dataset("fer2013", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("5 label problem(s) in FER2013") and "\n" not in message
    assert "fer2013.csv:3: emotion '7' out of range (0..6)" in message
    assert "fer2013.csv:4: Usage 'Public' is not one of Training, PublicTest, PrivateTest" in message
    assert "fer2013.csv:5: 2305 pixel values, expected 2304 in 0..255" in message
    assert "fer2013.csv:6: invalid literal for int() with base 10: 'x'" in message
    assert "fer2013.csv:7: 2 fields, expected 3" in message


@pytest.mark.parametrize("votes, targets", [
    # single votes go first: 6 of the remaining 9 is a majority
    ((6, 1, 0, 0, 0, 0, 0, 0, 3, 0), {"majority": [1], "probability": [1], "multi_target": [1]}),
    # 4-3-3: no majority; the three most voted hold 100%; all three have 30%
    ((4, 3, 3, 0, 0, 0, 0, 0, 0, 0), {"majority": None, "probability": [.4, .3, .3], "multi_target": [.4, .3, .3]}),
    # a 5-5 tie is taken together; majority needs more than half
    ((0, 0, 5, 5, 0, 0, 0, 0, 0, 0), {"majority": None, "crossentropy": [0, 0, .5, .5],
                                      "multi_target": [0, 0, .5, .5]}),
    # unknown wins: dropped in every mode
    ((2, 0, 0, 0, 0, 0, 0, 0, 8, 0), {"majority": None, "probability": None, "multi_target": None}),
    # unknown ties the top class: dropped after it, leaving 3 of 6 votes (not more than half);
    # multi_target keeps both and the tie goes to the class (the first maximum)
    ((3, 0, 0, 0, 0, 0, 0, 0, 3, 0), {"probability": None, "multi_target": [1]}),
    # five classes tie: more than three taken
    ((2, 2, 2, 2, 2, 0, 0, 0, 0, 0), {"probability": None, "majority": None}),
    # NF at 30% counts towards multi_target's half but is not a class
    ((4, 3, 0, 0, 0, 0, 0, 0, 0, 3), {"multi_target": [4 / 7, 3 / 7], "probability": [4 / 7, 3 / 7]}),
])
def test_ferplus_rules_of_the_reference_reader(votes, targets):
    for mode, expected in targets.items():
        got = ferplus_target(votes, mode)
        if expected is None:
            assert got is None, (mode, got)
        else:
            np.testing.assert_allclose(got, np.pad(expected, (0, 8 - len(expected))), err_msg=mode)


VOTES = [(10, 0, 0, 0, 0, 0, 0, 0, 0, 0), (0, 8, 0, 0, 0, 0, 0, 0, 1, 1), (4, 3, 3, 0, 0, 0, 0, 0, 0, 0),
         (0, 0, 5, 5, 0, 0, 0, 0, 0, 0), (2, 0, 0, 0, 0, 0, 0, 0, 8, 0), None, (0, 0, 0, 0, 0, 0, 0, 7, 0, 3),
         (0, 0, 0, 0, 6, 4, 0, 0, 0, 0), (0, 0, 0, 0, 0, 0, 9, 0, 0, 1), (4, 3, 3, 0, 0, 0, 0, 0, 0, 0)]
USAGES = ["Training"] * 7 + ["PublicTest", "PrivateTest", "PrivateTest"]


@pytest.fixture(scope="module")
def ferplus_tree(tmp_path_factory):
    manual = str(tmp_path_factory.mktemp("ferplus") / "FERPlus")
    field_trees.fer2013(manual, [(0, u) for u in USAGES])
    field_trees.ferplus(manual, VOTES, USAGES)
    return manual, str(tmp_path_factory.mktemp("data"))


def test_ferplus_majority(ferplus_tree):
    manual, data_dir = ferplus_tree
    summary = prepare_dataset("ferplus", data_dir=data_dir, manual_dir=manual)
    assert summary["class_names"] == FERPLUS_NAMES
    assert summary["class_counts"] == {"train": [1, 1, 0, 0, 0, 0, 0, 1], "validation": [0, 0, 0, 0, 1, 0, 0, 0],
                                       "test": [0, 0, 0, 0, 0, 0, 1, 0]}
    assert summary["excluded"] == {"no Image name (dropped by FERPlus)": 1, "unknown or not a face (majority)": 4}
    train = load_split("ferplus", "train", data_dir)
    rows = sorted(zip(train.metadata["file_name"], train.metadata["votes"], train.metadata["distribution"]))
    assert [r[0] for r in rows] == ["fer0000000.png", "fer0000001.png", "fer0000006.png"]
    assert [r[1] for r in rows] == [";".join(map(str, VOTES[i])) for i in (0, 1, 6)]
    assert [r[2] for r in rows] == [";".join(["1"] + ["0"] * 7), ";".join(["0", "1"] + ["0"] * 6),
                                    ";".join(["0"] * 7 + ["1"])]
    assert canonical_mapping(train.class_names).tolist() == [6, 3, 0, 4, 5, 2, 1, -1]


def test_ferplus_probability_keeps_the_distribution_and_the_majority_test_split(ferplus_tree):
    manual, data_dir = ferplus_tree
    majority = prepare_dataset("ferplus", data_dir=data_dir, manual_dir=manual)
    summary = prepare_dataset("ferplus/probability", data_dir=data_dir, manual_dir=manual)
    assert summary["class_counts"]["train"] == [2, 1, 1, 0, 0, 0, 0, 1]
    assert summary["excluded"] == {"no Image name (dropped by FERPlus)": 1, "unknown or not a face (majority)": 1,
                                   "unknown or not a face (probability)": 1}
    train = load_split("ferplus/probability", "train", data_dir)
    row = list(train.metadata["file_name"]).index("fer0000002.png")
    assert train.metadata["distribution"][row] == "0.4;0.3;0.3;0;0;0;0;0" and train.labels[row] == 0
    assert summary["fingerprints"]["test"] == majority["fingerprints"]["test"]
    assert summary["fingerprints"]["train"] != majority["fingerprints"]["train"]


def test_ferplus_errors(tmp_path):
    manual, data_dir = str(tmp_path / "FERPlus"), str(tmp_path / "data")
    field_trees.fer2013(manual, [(0, u) for u in USAGES])
    with pytest.raises(LayoutError, match=r"fer2013new.csv not found: expected .*fer2013new.csv"):
        prepare_dataset("ferplus", data_dir=data_dir, manual_dir=manual)
    path = field_trees.ferplus(manual, VOTES, USAGES)
    with open(path) as f:
        lines = f.read().splitlines()
    lines[1] = lines[1].replace("Training", "PublicTest")
    lines[2] = lines[2].replace("fer0000001.png", "fer0000010.png")
    lines[3] = lines[3].replace(",4,", ",four,")
    with open(path, "w") as f:
        f.write("\n".join(lines[:-1]) + "\n")
    with pytest.raises(LabelError) as info:
        prepare_dataset("ferplus", data_dir=data_dir, manual_dir=manual)
    message = str(info.value)
    assert message.startswith("4 label problem(s) in FERPlus") and "\n" not in message
    assert "fer2013new.csv has 9 rows, " in message and "fer2013.csv 10 (one per face, in order)" in message
    assert "fer2013new.csv:2: Usage 'PublicTest', but 'Training' in" in message
    assert "fer2013new.csv:3: Image name 'fer0000010.png', expected 'fer0000001.png'" in message
    assert "fer2013new.csv:4: expected Usage, Image name and 10 vote counts" in message
    with open(path, "w") as f:
        f.write(field_trees.FERPLUS_HEADER.replace("NF", "not_face") + "\n")
    with pytest.raises(LayoutError, match="does not start with FERPlus's header"):
        prepare_dataset("ferplus", data_dir=data_dir, manual_dir=manual)
