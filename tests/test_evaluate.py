"""`hsnet_jax.evaluate` on real run directories (config.json + orbax checkpoint) and the real
generated dataset, with networks whose answer is known (tests/handmade_run.py)."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from hsnet_jax import evaluate
from hsnet_jax.inference import evaluation
from hsnet_jax.runtime import cli
from hsnet_jax.inference import figures
from hsnet_jax.data import CANONICAL_EXPRESSIONS, load_split, prepare_dataset
from hsnet_jax.errors import HSNetError
from tests.handmade_run import GATES, answer_probabilities, make_run

DATASET = "synthetic/small"  # 20 test images per class
PER_CLASS = 20
# A RaFD-like model: its own names and order, and a class (contempt) outside the canonical 7.
RAFD_NAMES = ["angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data"))
    prepare_dataset(DATASET, path)
    return path


@pytest.fixture(scope="module")
def happy_run(data_dir, tmp_path_factory):
    """A run on the generated set whose network always answers happiness."""
    workdir = str(tmp_path_factory.mktemp("happy_run"))
    make_run(workdir, dataset=DATASET, data_dir=data_dir, class_names=list(CANONICAL_EXPRESSIONS),
             answer="happiness")
    return workdir


def test_cli_report_of_a_network_that_always_answers_happiness(happy_run, data_dir, capsys):
    assert evaluate.main(["--workdir", happy_run]) == 0
    out = capsys.readouterr().out
    assert "accuracy" in out and "14.29%" in out
    with open(os.path.join(happy_run, "eval", "test_metrics.json")) as f:
        report = json.load(f)
    # 7 classes x 20 images, all predicted happiness: Acc = 20/140, mAcc = (1 + 6 * 0) / 7.
    assert report["accuracy"] == pytest.approx(1 / 7)
    assert report["mean_accuracy"] == pytest.approx(1 / 7)
    assert report["per_class"] == {name: float(name == "happiness") for name in CANONICAL_EXPRESSIONS}
    happiness = CANONICAL_EXPRESSIONS.index("happiness")
    expected = np.zeros((7, 7), int)
    expected[:, happiness] = PER_CLASS
    assert report["confusion_matrix"] == expected.tolist()
    assert report["class_names"] == list(CANONICAL_EXPRESSIONS)
    assert (report["dataset"], report["split"], report["checkpoint"], report["excluded"]) == (
        DATASET, "test", "best", 0)
    with Image.open(os.path.join(happy_run, "eval", "test_confusion_matrix.png")) as image:
        assert image.format == "PNG"
    # Fig. 5: the first 4 faces of each class in split order, each "happiness 90%", right
    # only in the happiness row; the report lists them.
    with Image.open(os.path.join(happy_run, "eval", "test_examples.png")) as image:
        assert image.format == "PNG"
    labels = load_split(DATASET, "test", data_dir).labels
    first = figures.example_indices(labels, 7, per_class=4)
    drawn = report["examples"]
    assert [d["index"] for d in drawn] == [i for row in first for i in row]
    assert [d["right"] for d in drawn] == [c == happiness for c in range(7) for _ in range(4)]
    assert [d["true"] for d in drawn] == [name for name in CANONICAL_EXPRESSIONS for _ in range(4)]
    assert {d["predicted"] for d in drawn} == {"happiness"}
    assert [d["probability"] for d in drawn] == pytest.approx([answer_probabilities(7, happiness)[happiness]] * 28)
    # No FGAL, no gates.
    assert "gates" not in report and not os.path.exists(os.path.join(happy_run, "eval", "test_gates.png"))


def _count_colour(pixels: np.ndarray, colour: str) -> int:
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.abs(pixels - rgb).max(axis=-1) < 24))


def test_fgal_gates_per_true_class(data_dir, tmp_path):
    # FGAL whose gates are sigmoid(0, 1, -2) for every image: each class's mean is that.
    workdir = str(tmp_path / "fgal_run")
    make_run(workdir, dataset=DATASET, data_dir=data_dir, class_names=list(CANONICAL_EXPRESSIONS),
             answer="happiness", fgal=True)
    report = evaluation.evaluate_workdir(workdir)
    assert report["accuracy"] == pytest.approx(1 / 7)  # the same answer as the head without FGAL
    with open(report["metrics_path"]) as f:
        gates = json.load(f)["gates"]
    assert list(gates) == list(CANONICAL_EXPRESSIONS)
    for name in CANONICAL_EXPRESSIONS:
        assert [gates[name][level] for level in "ABC"] == pytest.approx(GATES.tolist(), rel=1e-6)
    assert report["gates_path"] == os.path.join(workdir, "eval", "test_gates.png")
    with Image.open(report["gates_path"]) as image:
        assert image.format == "PNG"
    assert os.path.exists(report["examples_path"])


def test_examples_are_the_first_of_each_class():
    labels = np.array([2, 0, 2, 2, 1, 0, 2])
    assert figures.example_indices(labels, 4, per_class=2) == [[1, 5], [4], [0, 2], []]


def test_cross_database_through_the_canonical_expressions(data_dir, tmp_path):
    # Trained "on RaFD" (never prepared here), evaluated on the generated set: the model's
    # "happy" is the canonical happiness, so 20 of 140 are right, and contempt is a column.
    workdir = str(tmp_path / "rafd_run")
    make_run(workdir, dataset="rafd", data_dir=data_dir, class_names=RAFD_NAMES, answer="happy")
    report = evaluation.evaluate_workdir(workdir, split="validation", dataset=DATASET)
    assert report["accuracy"] == pytest.approx(1 / 7)
    assert report["mean_accuracy"] == pytest.approx(1 / 7)
    assert report["class_names"] == list(CANONICAL_EXPRESSIONS) + ["contemptuous"]
    assert report["per_class"]["happiness"] == 1.0 and report["per_class"]["contemptuous"] is None
    assert report["excluded"] == 0
    # Named after the other dataset, split: the run's own reports are not overwritten.
    assert report["metrics_path"] == os.path.join(workdir, "eval", "synthetic_small_validation_metrics.json")
    with open(report["metrics_path"]) as f:
        assert json.load(f)["confusion_matrix"] == report["confusion_matrix"]
    assert os.path.exists(report["plot_path"])


def test_cross_database_leaves_out_classes_without_a_canonical_counterpart(happy_run, tmp_path, capsys):
    # An image folder whose test split has 3 angry, 2 contempt and 1 happy faces: contempt
    # cannot be scored, so Acc. = 1/4 (only happy is right), mAcc. = (0 + 1) / 2.
    rng = np.random.default_rng(0)
    for split, counts in (("train", {"angry": 1, "contempt": 1, "happy": 1}),
                          ("test", {"angry": 3, "contempt": 2, "happy": 1})):
        for name, n in counts.items():
            os.makedirs(tmp_path / "folder" / split / name)
            for i in range(n):
                pixels = rng.integers(0, 256, (100, 100, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "folder" / split / name / f"{i}.png")
    data_dir = str(tmp_path / "data")
    prepare_dataset("image_folder", data_dir, manual_dir=str(tmp_path / "folder"))
    capsys.readouterr()
    assert evaluate.main(["--workdir", happy_run, "--dataset", "image_folder", "--data_dir", data_dir]) == 0
    assert "2 without a canonical class left out" in capsys.readouterr().out
    with open(os.path.join(happy_run, "eval", "image_folder_test_metrics.json")) as f:
        report = json.load(f)
    assert (report["excluded"], report["num_examples"]) == (2, 4)
    assert report["accuracy"] == pytest.approx(0.25)
    assert report["mean_accuracy"] == pytest.approx(0.5)
    assert report["per_class"]["anger"] == 0.0 and report["per_class"]["happiness"] == 1.0
    assert report["per_class"]["surprise"] is None


def test_to_common_space_excludes_unmatched_truths_and_counts_unmatched_predictions_wrong():
    # Dataset RaFD-like (contempt has no canonical class); model trained on canonical names.
    labels = np.array([0, 0, 1, 1, 1, 4])  # angry, angry, contemptuous x3, happy
    predictions = np.array([5, 3, 3, 0, 0, 3])  # canonical: anger, happiness, ...
    got_labels, got_predictions, names, excluded = evaluation.to_common_space(
        labels, RAFD_NAMES, predictions, CANONICAL_EXPRESSIONS)
    anger, happiness = CANONICAL_EXPRESSIONS.index("anger"), CANONICAL_EXPRESSIONS.index("happiness")
    assert excluded == 3
    assert names == list(CANONICAL_EXPRESSIONS)
    assert got_labels.tolist() == [anger, anger, happiness]
    assert got_predictions.tolist() == [anger, happiness, happiness]
    # The other way round: a model class without a counterpart becomes an extra, always-wrong column.
    got_labels, got_predictions, names, excluded = evaluation.to_common_space(
        np.array([3, 5]), CANONICAL_EXPRESSIONS, np.array([1, 4]), RAFD_NAMES)
    assert names == list(CANONICAL_EXPRESSIONS) + ["contemptuous"]
    assert got_predictions.tolist() == [7, happiness] and got_labels.tolist() == [happiness, anger]
    assert excluded == 0


def test_same_classes_need_no_mapping():
    labels, predictions, names, excluded = evaluation.to_common_space(
        np.array([0, 1]), RAFD_NAMES, np.array([1, 1]), RAFD_NAMES)
    assert (labels.tolist(), predictions.tolist(), names, excluded) == ([0, 1], [1, 1], RAFD_NAMES, 0)


@pytest.mark.parametrize("args, message", [
    (["--split", "bogus"], "has no split 'bogus'"),
    (["--which", "latest"], "no latest checkpoint"),
    (["--dataset", "raf_db"], "python -m hsnet_jax.prepare --dataset raf_db"),
    (["--dataset", "nonsense"], "unknown dataset 'nonsense'"),
])
def test_errors_are_one_line(happy_run, capsys, args, message):
    assert cli.run(evaluate.main, ["--workdir", happy_run] + args) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_cli_without_a_run_directory_prints_no_traceback(tmp_path):
    result = subprocess.run([sys.executable, "-m", "hsnet_jax.evaluate", "--workdir", str(tmp_path)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr == f"error: {tmp_path} is not a training run directory (no config.json)\n"


def test_nothing_to_score_across_databases_is_an_error():
    with pytest.raises(HSNetError, match="no sample has a class among the canonical expressions"):
        evaluation.to_common_space(np.array([1, 1]), RAFD_NAMES, np.array([0, 2]), CANONICAL_EXPRESSIONS)
