"""The `stream` data placement's reader: a process's rows of each dispatch, read with Grain
from the prepared array_record files, so a split larger than host memory trains.

Grain reads the rows in the BatchSampler's order (the same batches as the other placements)
with a pool of threads and a bounded read-ahead buffer; only this process's rows are read.
Resuming needs no Grain iterator state: the position in the epoch is in the checkpoint meta
and the reader starts at that step.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np

from hsnet_jax.data.loading import SplitSource

READ_THREADS = 8  # rows in flight at once; array_record reads are I/O plus a memcpy each
READ_AHEAD_STEPS = 4  # the reader's buffer, in steps of rows (bounds its memory)


def read_dispatches(source: SplitSource, rows: np.ndarray, start: int,
                    steps_per_dispatch: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(uint8 images [K, local_batch, H, W, 3], int32 labels [K, local_batch]) of each dispatch
    of an epoch from step `start`, where `rows` is this process's [steps, local_batch] rows."""
    import grain  # only the stream placement needs it

    local_batch = rows.shape[1]
    order = np.ascontiguousarray(rows[start:]).reshape(-1)
    examples = grain.MapDataset.source(order).map(lambda row: _example(source, int(row)))
    read = examples.to_iter_dataset(grain.ReadOptions(num_threads=READ_THREADS,
                                                      prefetch_buffer_size=READ_AHEAD_STEPS * local_batch))
    yield from read.batch(local_batch).batch(steps_per_dispatch)


def _example(source: SplitSource, row: int) -> tuple[np.ndarray, np.int32]:
    example = source.source[row]
    return np.asarray(example["image"], np.uint8), np.int32(example["label"])
