"""BatchSampler: seeded per-epoch permutations, resumable, split across processes; the
class-balanced draws of config.class_balance "sampler"."""

import numpy as np
import pytest

from hsnet_jax.training.sampler import BatchSampler
from hsnet_jax.training.targets import sampling_weights
from hsnet_jax.data.errors import SamplerError


def test_epoch_is_a_permutation_without_remainder():
    sampler = BatchSampler(103, 10, seed=3)
    rows = sampler.epoch_indices(0)
    assert sampler.steps_per_epoch == 10 and rows.shape == (10, 10)
    assert len(np.unique(rows)) == 100 and rows.max() < 103


def test_seeded_and_different_per_epoch():
    a, b = BatchSampler(50, 5, seed=0), BatchSampler(50, 5, seed=0)
    np.testing.assert_array_equal(a.epoch_indices(2), b.epoch_indices(2))
    assert not np.array_equal(a.epoch_indices(0), a.epoch_indices(1))
    assert not np.array_equal(a.epoch_indices(0), BatchSampler(50, 5, seed=1).epoch_indices(0))


def test_resume_from_any_step():
    sampler = BatchSampler(64, 8, seed=7)
    full = list(sampler.batches(3))
    resumed = list(sampler.batches(3, start_step=5))
    assert len(resumed) == 3
    for x, y in zip(full[5:], resumed):
        np.testing.assert_array_equal(x, y)


def test_processes_share_the_global_batch():
    single = BatchSampler(100, 12, seed=5).epoch_indices(1)
    parts = [BatchSampler(100, 12, seed=5, process_index=p, process_count=3).epoch_indices(1) for p in range(3)]
    assert all(p.shape == (8, 4) for p in parts)
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), single)


@pytest.mark.parametrize("args", [(10, 16, 0, 0, 1), (100, 10, 0, 0, 3), (100, 12, 0, 3, 3)])
def test_bad_sizes_raise(args):
    n, batch, seed, index, count = args
    with pytest.raises(SamplerError):
        BatchSampler(n, batch, seed, process_index=index, process_count=count)


def test_balanced_epochs_draw_the_classes_alike_deterministically_on_any_process_count():
    labels = np.repeat([0, 1, 2], [900, 90, 10])  # AffectNet-like imbalance
    weights = sampling_weights(labels, 3)
    sampler = BatchSampler(1000, 40, seed=4, weights=weights)
    rows = sampler.epoch_batches(0)
    assert rows.shape == (25, 40) and sampler.steps_per_epoch == 25  # as many examples as an epoch without it
    counts = np.bincount(labels[rows.reshape(-1)], minlength=3)
    assert counts.sum() == 1000 and all(abs(c - 1000 / 3) < 60 for c in counts), counts
    assert len(np.unique(rows[labels[rows] == 2])) == 10  # the rare class repeats, drawn with replacement
    np.testing.assert_array_equal(rows, BatchSampler(1000, 40, seed=4, weights=weights).epoch_batches(0))
    assert not np.array_equal(rows, sampler.epoch_batches(1))
    parts = [BatchSampler(1000, 40, seed=4, weights=weights, process_index=p, process_count=4).epoch_indices(0)
             for p in range(4)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), rows)
    np.testing.assert_array_equal(list(sampler.batches(0, start_step=20)), rows[20:])
    with pytest.raises(SamplerError):
        BatchSampler(1000, 40, seed=4, weights=weights[:-1])
