"""What a run trains each example towards, and how it balances the classes.

The target is the example's class, or with FERPlus's soft modes (datasets
ferplus/probability, ferplus/crossentropy, ferplus/multi_target) the annotators' vote
distribution the dataset keeps (`hsnet_jax.data.ferplus`), used as Microsoft's reference
trainer does: `crossentropy` trains towards the distribution, `probability` towards one class
drawn from it per example and epoch, `multi_target` with its own loss on the classes over 30%
of the votes (`train_step.multi_target_loss`). The draws are a pure function of (seed, epoch),
so a resumed run draws what it would have drawn.

`config.class_balance`: "none" (the paper's recipe), "sampler" (each epoch drawn with
probability inverse to the class's frequency: `BatchSampler(weights=...)`) or "loss" (the
cross-entropy weighted by inverse class frequency: `class_weights`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import ml_collections
import numpy as np

SOFT_MODES = ("probability", "crossentropy", "multi_target")  # FERPlus's modes that train on the votes
DRAW_STREAM = 1  # `probability`'s draws: a random stream apart from the sampler's (seed, epoch)


@dataclasses.dataclass(frozen=True)
class Targets:
    """The training split's labels (and vote distributions) and each epoch's targets."""

    labels: np.ndarray  # int32 [N]: the class (FERPlus: the distribution's largest)
    num_classes: int
    seed: int
    mode: str = "majority"  # one class per example, or one of SOFT_MODES
    distributions: np.ndarray | None = None  # float32 [N, C] in the soft modes

    @property
    def loss(self) -> str:
        """The train step's loss (`train_step.LOSSES`)."""
        return "multi_target" if self.mode == "multi_target" else "cross_entropy"

    def epoch_targets(self, epoch: int) -> np.ndarray:
        """Epoch `epoch`'s targets: class indices int32 [N], or distributions float32 [N, C]."""
        if self.mode == "crossentropy":
            return self.distributions
        if self.mode == "multi_target":  # every class over 30% of the votes alike, as the reference marks them
            return (self.distributions > 0).astype(np.float32)
        return self.epoch_labels(epoch)

    def epoch_labels(self, epoch: int) -> np.ndarray:
        """The class each example counts as in epoch `epoch` (`probability`: its draw)."""
        if self.mode != "probability":
            return self.labels
        u = np.random.default_rng([self.seed, epoch, DRAW_STREAM]).random(len(self.labels))
        cdf = np.cumsum(self.distributions, axis=1, dtype=np.float64)
        cdf /= cdf[:, -1:]  # ends at exactly 1 > u: a class of probability 0 is never drawn
        return (u[:, None] >= cdf).sum(axis=1).astype(np.int32)

    def class_counts(self, epoch: int, rows: np.ndarray) -> list[int]:
        """How many of the epoch's trained rows (all processes') are of each class."""
        labels = self.epoch_labels(epoch)[np.asarray(rows).reshape(-1)]
        return np.bincount(labels, minlength=self.num_classes).tolist()


def class_frequencies(labels: np.ndarray, num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels), minlength=num_classes).astype(np.float64)


def class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse class frequency, N / (classes present x n_c) (scikit-learn's "balanced"; 0 for
    a class without examples), so that the weights average 1 over the training examples."""
    counts = class_frequencies(labels, num_classes)
    present = np.count_nonzero(counts)
    return np.divide(counts.sum(), present * counts, out=np.zeros_like(counts), where=counts > 0)


def sampling_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per example 1 / (its class's count): every class is drawn equally often on average."""
    return 1.0 / class_frequencies(labels, num_classes)[np.asarray(labels)]


def training_targets(config: ml_collections.ConfigDict, train: Any, num_classes: int) -> Targets:
    """The Targets of the training split `train` (a SplitSource or Split) for `config`: soft
    when the dataset is one of FERPlus's soft modes."""
    mode = config.dataset.partition("/")[2]
    if mode not in SOFT_MODES:
        labels, _ = train.columns()
        return Targets(labels, num_classes, config.seed)
    labels, metadata = train.columns(("distribution",))
    distributions = np.array([[float(p) for p in row.split(";")] for row in metadata["distribution"]], np.float32)
    return Targets(labels, num_classes, config.seed, mode, distributions)
