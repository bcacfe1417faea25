"""Seeded per-epoch batches that a resumed or multi-host run reproduces exactly.

The permutation of epoch `e` depends only on (seed, e), so a run resumed at (epoch, step)
draws the very batches it would have drawn, and each of `process_count` hosts takes its own
contiguous slice of every global batch (process `p` gets columns
`p * local : (p + 1) * local`), which together are the global batch.

With `weights` (config.class_balance "sampler") an epoch is instead as many draws with
replacement, example i drawn with probability weights[i] (inverse to its class's frequency:
DAN's and POSTER's ImbalancedDatasetSampler, torch.multinomial with replacement); still a
pure function of (seed, epoch), so resuming and any device or process count draw the same.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from hsnet_jax.data.errors import SamplerError


class BatchSampler:
    """Row indices of the global batches of each epoch; the last partial batch is dropped."""

    def __init__(self, num_examples: int, global_batch_size: int, seed: int, *,
                 process_index: int = 0, process_count: int = 1, weights: np.ndarray | None = None):
        if global_batch_size <= 0 or global_batch_size % process_count:
            raise SamplerError(
                f"global batch size {global_batch_size} must be a positive multiple of the "
                f"process count {process_count}")
        if not 0 <= process_index < process_count:
            raise SamplerError(f"process index {process_index} is not in [0, {process_count})")
        if num_examples < global_batch_size:
            raise SamplerError(
                f"the dataset has {num_examples} examples, fewer than one global batch "
                f"of {global_batch_size}")
        if weights is not None and (len(weights) != num_examples or np.any(np.asarray(weights) < 0)):
            raise SamplerError(f"sampling weights must be {num_examples} non-negative numbers")
        self.weights = None if weights is None else np.asarray(weights, np.float64) / np.sum(weights)
        self.num_examples = num_examples
        self.global_batch_size = global_batch_size
        self.seed = seed
        self.process_index = process_index
        self.process_count = process_count
        self.local_batch_size = global_batch_size // process_count
        self.steps_per_epoch = num_examples // global_batch_size

    def epoch_batches(self, epoch: int) -> np.ndarray:
        """Every process's rows of epoch `epoch`: int64 [steps_per_epoch, global_batch_size]."""
        rng = np.random.default_rng([self.seed, epoch])
        if self.weights is None:
            order = rng.permutation(self.num_examples)
        else:
            order = rng.choice(self.num_examples, size=self.num_examples, replace=True, p=self.weights)
        return order[: self.steps_per_epoch * self.global_batch_size].reshape(
            self.steps_per_epoch, self.global_batch_size)

    def epoch_indices(self, epoch: int) -> np.ndarray:
        """This process's rows of epoch `epoch`: int64 [steps_per_epoch, local_batch_size]."""
        batches = self.epoch_batches(epoch)
        start = self.process_index * self.local_batch_size
        return batches[:, start: start + self.local_batch_size]

    def batches(self, epoch: int, start_step: int = 0) -> Iterator[np.ndarray]:
        """Yields this process's index rows of `epoch`, from `start_step` on."""
        yield from self.epoch_indices(epoch)[start_step:]
