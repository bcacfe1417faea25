"""Accuracy (eq. 22), mean accuracy (eq. 23) and the confusion matrix on hand-counted cases."""

import json

import numpy as np
import pytest
from PIL import Image

from hsnet_jax.inference import metrics

NAMES = ("anger", "joy", "surprise")


def test_report_hand_built_case():
    # anger: 4 samples, 3 right, 1 taken for joy; joy: 2, 1 right, 1 taken for surprise;
    # surprise: 4, all right. Acc = 8/10; mAcc = (3/4 + 1/2 + 4/4) / 3 = 0.75.
    labels = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]
    predictions = [0, 0, 0, 1, 1, 2, 2, 2, 2, 2]
    report = metrics.classification_report(np.array(labels), np.array(predictions), NAMES)
    assert report["accuracy"] == pytest.approx(0.8)
    assert report["mean_accuracy"] == pytest.approx(0.75)
    assert report["per_class"] == pytest.approx({"anger": 0.75, "joy": 0.5, "surprise": 1.0})
    assert report["confusion_matrix"] == [[3, 1, 0], [0, 1, 1], [0, 0, 4]]
    assert report["class_names"] == list(NAMES)
    assert report["num_examples"] == 10
    assert json.loads(json.dumps(report)) == report  # what evaluate writes is the report itself


def test_class_absent_from_labels_is_left_out_of_the_mean():
    # No surprise among the labels; one anger sample is wrongly predicted as surprise.
    report = metrics.classification_report([0, 0, 1], [0, 2, 1], NAMES)
    assert report["per_class"] == {"anger": 0.5, "joy": 1.0, "surprise": None}
    assert report["mean_accuracy"] == pytest.approx(0.75)  # (1/2 + 1) / 2, not / 3
    assert report["accuracy"] == pytest.approx(2 / 3)
    assert report["confusion_matrix"][0] == [1, 0, 1]


@pytest.mark.parametrize("labels, predictions, message", [
    ([0, 1], [0], "2 labels but 1 predictions"),
    ([0, 3], [0, 1], "label is outside"),
    ([0, 1], [0, -1], "prediction is outside"),
    ([], [], "no examples"),
])
def test_bad_inputs_are_rejected(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        metrics.classification_report(labels, predictions, NAMES)


def test_row_normalized_keeps_empty_rows_zero():
    fractions = metrics.row_normalized([[3, 1, 0], [0, 0, 0], [0, 1, 3]])
    np.testing.assert_allclose(fractions, [[0.75, 0.25, 0], [0, 0, 0], [0, 0.25, 0.75]])


def test_plot_confusion_matrix_writes_a_png(tmp_path):
    report = metrics.classification_report([0, 0, 1, 2], [0, 1, 1, 2], NAMES)
    path = tmp_path / "confusion.png"
    metrics.plot_confusion_matrix(report, str(path))
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= 400


def test_gates_per_class_averages_each_true_class():
    gates = np.array([[0.1, 0.2, 0.3], [0.3, 0.4, 0.5], [0.9, 0.8, 0.7]])
    summary = metrics.gates_per_class(gates, np.array([0, 0, 2]), ["anger", "fear", "joy"])
    assert summary["anger"] == pytest.approx({"A": 0.2, "B": 0.3, "C": 0.4})
    assert summary["fear"] is None  # no sample: no mean
    assert summary["joy"] == pytest.approx({"A": 0.9, "B": 0.8, "C": 0.7})
