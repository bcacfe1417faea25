"""Where the training split lives while a run trains (`config.data_placement`), and the
feeders that hand the train step each dispatch's inputs from there.

- `device`: the uint8 split on every device; a dispatch sends int32 indices only (fastest,
  but the split's bytes are spent on every device).
- `host`: the split in host memory; a background thread gathers this process's rows of the
  next dispatches and puts them on its devices while the current dispatch runs.
- `stream`: as `host`, but the rows are read from the prepared array_record files with Grain
  (`hsnet_jax.training.stream`); the split is never held whole.
- `auto` (default): `device` when the split fits comfortably in the smallest device's free
  memory, else `host` when it fits in the host's, else `stream` (`choose`).

Every placement draws the BatchSampler's batches with the epoch's targets (`hsnet_jax.training.targets`)
and the step differs only in its gather
(`train_step.make_train_step(gathered=...)`), so the weights are the same bit for bit.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
from typing import Any, Callable, Iterator

import jax
import ml_collections
import numpy as np
from jax.experimental import multihost_utils

from hsnet_jax.runtime.devices import put_batches, put_indices, replicate
from hsnet_jax.data.loading import Split, SplitSource
from hsnet_jax.config import DATA_PLACEMENTS

PLACEMENTS = DATA_PLACEMENTS
# `auto` gives the split at most this share of the free memory it measures: on a device the
# model, optimiser state and activations need the rest; on the host, the process itself.
FRACTION = 0.5
PREFETCH = 2  # dispatches put on the devices ahead of the one running

Dispatch = tuple[int, tuple[Any, ...]]  # (first step of the dispatch, the step's inputs after the state)


def host_free_bytes() -> int:
    """Memory the host can still give (MemAvailable; free pages where /proc is missing)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def device_free_bytes(devices: list[Any], host_free: int) -> int:
    """The smallest free memory (bytes_limit - bytes_in_use) of `devices`. Devices that report
    no memory statistics (CPU) live in host memory and each holds its own copy of the split:
    they get an equal part of the host's free memory."""
    free = []
    for device in devices:
        stats = device.memory_stats() or {}
        if "bytes_limit" not in stats:
            free.append(host_free // len(devices))
        else:
            free.append(stats["bytes_limit"] - stats.get("bytes_in_use", 0))
    return min(free)


def choose(nbytes: int, device_free: int, host_free: int, max_device_bytes: int = 0,
           max_host_bytes: int = 0) -> tuple[str, str]:
    """`auto`'s rule: (placement, why). The split may use FRACTION of the free memory, and no
    more than a cap (config.max_device_bytes / max_host_bytes; 0 = no cap)."""
    device_budget = _capped(FRACTION * device_free, max_device_bytes)
    host_budget = _capped(FRACTION * host_free, max_host_bytes)
    size = f"the training split ({_gb(nbytes)})"
    if nbytes <= device_budget:
        return "device", f"{size} fits in the device budget {_budget(device_budget, device_free, max_device_bytes)}"
    why = f"{size} exceeds the device budget {_budget(device_budget, device_free, max_device_bytes)}"
    if nbytes <= host_budget:
        return "host", f"{why} and fits in the host budget {_budget(host_budget, host_free, max_host_bytes)}"
    return "stream", f"{why} and the host budget {_budget(host_budget, host_free, max_host_bytes)}"


def _capped(budget: float, cap: int) -> int:
    return int(min(budget, cap) if cap > 0 else budget)


def _budget(budget: int, free: int, cap: int) -> str:
    parts = [f"{int(FRACTION * 100)}% of {_gb(free)} free"] + ([f"cap {_gb(cap)}"] if cap > 0 else [])
    return f"{_gb(budget)} ({', '.join(parts)})"


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e7 else f"{int(n)} bytes"


def resolve(config: ml_collections.ConfigDict, nbytes: int) -> tuple[str, str]:
    """The placement a run uses and why; with several processes the most frugal of their
    choices, so that all of them feed the same step."""
    if config.data_placement != "auto":
        return config.data_placement, "config.data_placement"
    host_free = host_free_bytes()
    placement, why = choose(nbytes, device_free_bytes(jax.local_devices(), host_free), host_free,
                            config.max_device_bytes, config.max_host_bytes)
    if jax.process_count() > 1:
        mine = PLACEMENTS.index(placement)
        agreed = int(np.max(multihost_utils.process_allgather(np.int32(mine))))
        if agreed != mine:
            placement, why = PLACEMENTS[agreed], f"another process chose it ({why} here)"
    return placement, f"auto: {why}"


def make_feeder(config: ml_collections.ConfigDict, mesh: Any, train: SplitSource):
    """The feeder of `config.data_placement` for the opened training split; says which once."""
    placement, why = resolve(config, train.nbytes)
    if jax.process_index() == 0:
        print(f"data placement: {placement} ({why})", file=sys.stderr, flush=True)
    return build_feeder(placement, mesh, train)


def build_feeder(placement: str, mesh: Any, train: SplitSource, split: Split | None = None):
    """The feeder of `placement` ("device", "host" or "stream") for the opened training split;
    `split` is the split already in memory, where the caller has it. A feeder's `split` is the
    split in host memory (None when streamed), so the loop reads labels without a second pass."""
    if placement == "stream" and isinstance(train, Split):
        placement = "host"  # already in memory (a fold of a database): nothing to stream from
    if placement == "stream":
        from hsnet_jax.training.stream import read_dispatches
        return RowFeeder(mesh, lambda rows, start, k: read_dispatches(train, rows, start, k), placement)
    split = train.load() if split is None else split
    if placement == "host":
        feeder = RowFeeder(mesh, lambda rows, start, k: _gather(split.images, split.labels, rows, start, k),
                           placement)
    else:
        feeder = DeviceFeeder(mesh, split.images, split.labels)
    feeder.split = split
    return feeder


class DeviceFeeder:
    """The split on every device; each dispatch's inputs are the split and K steps' indices."""

    gathered = False
    placement = "device"
    split: Split | None = None

    def __init__(self, mesh: Any, images: np.ndarray, labels: np.ndarray):
        self.mesh = mesh
        self.images, self.labels = replicate(mesh, (images, labels.astype(np.int32)))

    def dispatches(self, rows: np.ndarray, start: int, k: int,
                   targets: np.ndarray | None = None) -> Iterator[Dispatch]:
        """The inputs of each dispatch of an epoch whose process rows are `rows`, from step `start`;
        `targets`: the epoch's labels or target distributions for every example (default: the split's)."""
        labels = self.labels if targets is None else replicate(self.mesh, targets)
        for first in range(start, len(rows), k):
            yield first, (self.images, labels, put_indices(self.mesh, rows[first:first + k]))


def _gather(images: np.ndarray, labels: np.ndarray, rows: np.ndarray, start: int,
            k: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for first in range(start, len(rows), k):
        chunk = rows[first:first + k]
        yield images[chunk], labels[chunk].astype(np.int32)


class RowFeeder:
    """Each dispatch's rows, gathered on the host by `read(rows, start, k)` (from memory or
    from disk) and put on the devices by a background thread, PREFETCH dispatches ahead."""

    gathered = True
    split: Split | None = None

    def __init__(self, mesh: Any, read: Callable[[np.ndarray, int, int], Iterator[tuple[np.ndarray, np.ndarray]]],
                 placement: str):
        self.mesh, self.read, self.placement = mesh, read, placement

    def dispatches(self, rows: np.ndarray, start: int, k: int,
                   targets: np.ndarray | None = None) -> Iterator[Dispatch]:
        """As DeviceFeeder.dispatches; closing the iterator early stops the thread."""
        ready: queue.Queue = queue.Queue(PREFETCH)
        stop = threading.Event()

        def produce():
            try:
                first = start
                with contextlib.closing(self.read(rows, start, k)) as batches:
                    for images, labels in batches:
                        if stop.is_set():
                            return
                        if targets is not None:
                            labels = targets[rows[first:first + len(images)]]
                        ready.put((first, put_batches(self.mesh, images, labels)))
                        first += len(images)
                ready.put(None)
            except BaseException as e:  # re-raised in the training loop
                ready.put(e)

        thread = threading.Thread(target=produce, name=f"hsnet-{self.placement}-feeder", daemon=True)
        thread.start()
        try:
            while (item := ready.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            while thread.is_alive():  # unblock a producer waiting on a full queue
                try:
                    ready.get(timeout=0.1)
                except queue.Empty:
                    pass
            thread.join()
