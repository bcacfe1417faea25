"""What a run trains towards: the soft cross-entropy and its gradient against PyTorch's
`cross_entropy` with probability targets (and class weights), FERPlus's multi_target loss
against its reference formula, training accuracy on soft targets, the seeded per-epoch draws
of the probability mode and the inverse-frequency class weights."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
import torch

from hsnet_jax.data.loading import Split
from hsnet_jax.training import targets, train_step


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (6, 8)).astype(np.float32)
    votes = rng.integers(0, 5, (6, 8)).astype(np.float32) * (rng.random((6, 8)) > 0.5)
    votes[:, 0] += 1  # no empty row
    return logits, votes / votes.sum(1, keepdims=True)


@pytest.mark.parametrize("weighted", [False, True])
def test_soft_cross_entropy_and_gradient_equal_pytorch(batch, weighted):
    logits, probabilities = batch
    weights = np.linspace(0.5, 2.0, 8).astype(np.float32) if weighted else None

    def ours(z):
        return train_step.soft_cross_entropy(z, jnp.asarray(probabilities), weights).mean()

    value, grad = jax.value_and_grad(ours)(jnp.asarray(logits))
    z = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(z, torch.tensor(probabilities),
                                               weight=None if weights is None else torch.tensor(weights))
    theirs.backward()
    np.testing.assert_allclose(float(value), theirs.item(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad), z.grad.numpy(), rtol=1e-5, atol=1e-7)
    labels = probabilities.argmax(1)  # a one-hot target is the usual cross-entropy of its class
    one_hot = train_step.soft_cross_entropy(jnp.asarray(logits), train_step.as_targets(jnp.asarray(labels), 8))
    expected = torch.nn.functional.cross_entropy(torch.tensor(logits), torch.tensor(labels), reduction="none")
    np.testing.assert_allclose(np.asarray(one_hot), expected.numpy(), rtol=1e-6)


def test_class_weighted_cross_entropy_on_class_indices_is_pytorchs_weighted_mean(batch):
    """config.class_balance "loss" on hard labels: PyTorch divides by the examples' weights."""
    logits, probabilities = batch
    labels, weights = probabilities.argmax(1), np.linspace(0.5, 3.0, 8).astype(np.float32)

    def ours(z):
        y = jnp.asarray(labels)
        return train_step.batch_loss(z, y, train_step.as_targets(y, 8), jnp.asarray(weights))

    value, grad = jax.value_and_grad(ours)(jnp.asarray(logits))
    z = torch.tensor(logits, requires_grad=True)
    theirs = torch.nn.functional.cross_entropy(z, torch.tensor(labels), weight=torch.tensor(weights))
    theirs.backward()
    np.testing.assert_allclose(float(value), theirs.item(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(grad), z.grad.numpy(), rtol=1e-5, atol=1e-7)
    assert abs(float(value) - float(train_step.soft_cross_entropy(jnp.asarray(logits), train_step.as_targets(
        jnp.asarray(labels), 8), jnp.asarray(weights)).mean())) > 1e-3  # not the plain mean


def test_multi_target_loss_and_accuracy_count_any_class_over_30_percent(batch):
    logits, probabilities = batch
    marked = (probabilities > 0).astype(np.float32)
    reference = (1 - 0.001) * marked + 0.001  # microsoft/FERPlus: the reader's target, then -log max(t * p)
    p = torch.softmax(torch.tensor(logits), 1).numpy()
    np.testing.assert_allclose(np.asarray(train_step.multi_target_loss(jnp.asarray(logits), jnp.asarray(marked))),
                               -np.log((reference * p).max(1)), rtol=1e-6)
    z = jnp.asarray([[0.0, 2.0, 1.0], [3.0, 0.0, 1.0]])
    votes = jnp.asarray([[0.6, 0.4, 0.0], [0.0, 0.4, 0.6]])
    assert np.asarray(train_step.hits(z, votes)).tolist() == [0.0, 0.0]  # the majority only
    assert np.asarray(train_step.hits(z, (votes > 0).astype(jnp.float32))).tolist() == [1.0, 0.0]


def test_probability_mode_draws_each_epoch_from_the_votes_seeded():
    distributions = np.tile(np.asarray([[0.7, 0.0, 0.3]], np.float32), (4000, 1))
    t = targets.Targets(np.zeros(4000, np.int32), 3, seed=2, mode="probability", distributions=distributions)
    first = t.epoch_targets(0)
    assert first.dtype == np.int32 and set(np.unique(first)) == {0, 2}  # a class without votes never
    assert abs(np.mean(first == 0) - 0.7) < 0.03
    np.testing.assert_array_equal(first, targets.Targets(t.labels, 3, 2, "probability", distributions).epoch_targets(0))
    assert not np.array_equal(first, t.epoch_targets(1))
    assert t.class_counts(0, np.arange(10)) == np.bincount(first[:10], minlength=3).tolist()
    soft = targets.Targets(t.labels, 3, 2, "crossentropy", distributions)
    assert soft.loss == "cross_entropy" and soft.epoch_targets(5) is distributions
    multi = targets.Targets(t.labels, 3, 2, "multi_target", distributions)
    assert multi.loss == "multi_target" and multi.epoch_targets(0)[0].tolist() == [1.0, 0.0, 1.0]


def test_training_targets_read_the_mode_from_the_dataset_and_weights_invert_frequency():
    labels = np.asarray([0, 0, 0, 1, 2, 2], np.int32)
    split = Split(np.zeros((6, 1, 1, 3), np.uint8), labels, ("a", "b", "c", "d"),
                  {"distribution": np.asarray(["1;0;0;0", "0.5;0.5;0;0"] * 3)})
    config = ml_collections.ConfigDict(dict(dataset="ferplus/crossentropy", seed=0))
    soft = targets.training_targets(config, split, 4)
    assert soft.mode == "crossentropy" and soft.distributions[1].tolist() == [0.5, 0.5, 0, 0]
    config.dataset = "ferplus"
    assert targets.training_targets(config, split, 4).epoch_targets(0) is labels
    weights = targets.class_weights(labels, 4)
    assert weights.tolist() == pytest.approx([6 / 9, 2.0, 1.0, 0.0])  # N / (present classes x n_c)
    assert weights[labels].mean() == pytest.approx(1.0)
    assert targets.sampling_weights(labels, 4).tolist() == pytest.approx([1 / 3] * 3 + [1.0, 0.5, 0.5])
