"""The generated set: deterministic, balanced, TFDS round trip, and not linearly separable."""

import numpy as np
import pytest

from hsnet_jax.data import CANONICAL_EXPRESSIONS, DatasetNotPreparedError, load_split, prepare_dataset
from hsnet_jax.data.synthetic_faces import draw_faces


def test_deterministic_and_sliceable():
    a, la = draw_faces(0, 1, 9)
    b, lb = draw_faces(0, 1, 4, start=5)
    np.testing.assert_array_equal(a[5:], b)
    np.testing.assert_array_equal(la[5:], lb)
    c, _ = draw_faces(1, 1, 9)
    assert not np.array_equal(a, c)
    assert a.shape == (9, 100, 100, 3) and a.dtype == np.uint8


def test_prepare_and_load_small(tmp_path):
    with pytest.raises(DatasetNotPreparedError, match="python -m hsnet_jax.prepare --dataset synthetic/small"):
        load_split("synthetic/small", "train", str(tmp_path))
    summary = prepare_dataset("synthetic/small", data_dir=str(tmp_path))
    assert summary["class_counts"] == {"train": [100] * 7, "validation": [20] * 7, "test": [20] * 7}
    train = load_split("synthetic/small", "train", str(tmp_path))
    test = load_split("synthetic/small", "test", str(tmp_path))
    assert train.class_names == CANONICAL_EXPRESSIONS
    assert train.images.shape == (700, 100, 100, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int32 and np.bincount(train.labels).tolist() == [100] * 7
    assert len(set(train.metadata["file_name"])) == 700 and test.metadata["file_name"][0].startswith("test_")
    # The stored pixels are the drawn ones.
    i = int(np.flatnonzero(train.metadata["file_name"] == "train_00010.png")[0])
    np.testing.assert_array_equal(train.images[i], draw_faces(0, 0, 1, start=10)[0][0])
    assert train.labels[i] == 10 % 7


@pytest.mark.slow
def test_linear_model_on_pixels_stays_below_60_percent():
    """Ridge regression on raw pixels (dual form), best of several regularisations, on the default sizes."""
    xtr, ytr = draw_faces(0, 0, 3500)
    xte, yte = draw_faces(0, 2, 700)
    assert np.bincount(ytr).tolist() == [500] * 7 and np.bincount(yte).tolist() == [100] * 7
    ftr = xtr.reshape(len(xtr), -1).astype(np.float32) / 255.0
    fte = xte.reshape(len(xte), -1).astype(np.float32) / 255.0
    mean = ftr.mean(0)
    ftr -= mean
    fte -= mean
    targets = np.eye(7, dtype=np.float32)[ytr]
    targets -= targets.mean(0)
    gram, cross = ftr @ ftr.T, fte @ ftr.T
    accuracies = []
    for lam in (1.0, 30.0, 1000.0):
        alpha = np.linalg.solve(gram + lam * np.eye(len(gram), dtype=np.float32), targets)
        accuracies.append(float(((cross @ alpha).argmax(1) == yte).mean()))
    assert max(accuracies) < 0.6, accuracies
    assert max(accuracies) > 1 / 7 + 0.05, accuracies  # the labels are in the pixels at all
