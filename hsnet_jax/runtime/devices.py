"""The device mesh and putting arrays on it: one 1-D mesh named "data" over every device of
every process (docs/design.md section 5), the same code for 1 GPU, 8 GPUs, a TPU slice or
several hosts. Shared by training (the step's inputs) and inference (the evaluation batches)."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hsnet_jax.errors import HSNetError

DATA = "data"  # the one mesh axis: data parallelism

PyTree = Any


def make_mesh(devices=None) -> Mesh:
    """A 1-D mesh named "data" over all devices (of every process)."""
    devices = jax.devices() if devices is None else devices
    return Mesh(np.asarray(devices), (DATA,))


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Returns the per-device batch; raises HSNetError when the devices cannot share the batch evenly."""
    n = mesh.devices.size
    if global_batch_size % n:
        raise HSNetError(f"batch_size {global_batch_size} is not divisible by the {n} devices; "
                         f"use a multiple of {n}")
    return global_batch_size // n


def replicate(mesh: Mesh, tree: PyTree) -> PyTree:
    """Copies host arrays (the same on every process) to every device of the mesh; arrays
    already replicated there are kept as they are, so calling it each time costs nothing.
    (The exact sharding matters: jit compiles anew for an equivalent but different one.)"""
    sharding = NamedSharding(mesh, P())

    def put(a):
        if isinstance(a, jax.Array) and (a.sharding == sharding or not a.is_fully_addressable):
            return a if a.sharding == sharding else jax.device_put(a, sharding)
        # Host data, or an array on this process's devices (e.g. fresh from init): via the
        # host, which works the same with one process or many.
        return jax.make_array_from_process_local_data(sharding, np.asarray(a))

    return jax.tree.map(put, tree)


def _put_columns(mesh: Mesh, local: np.ndarray) -> jax.Array:
    """The global [K, global_batch, ...] array from this process's [K, share, ...] columns."""
    shape = (local.shape[0], local.shape[1] * jax.process_count()) + local.shape[2:]
    return jax.make_array_from_process_local_data(NamedSharding(mesh, P(None, DATA)), local, shape)


def put_indices(mesh: Mesh, local_idx: np.ndarray) -> jax.Array:
    """Builds the global [K, global_batch] index array from this process's [K, share] rows."""
    return _put_columns(mesh, np.asarray(local_idx, np.int32))


def put_batches(mesh: Mesh, local_images: np.ndarray, local_labels: np.ndarray) -> tuple[jax.Array, jax.Array]:
    """The global [K, global_batch, ...] images and labels from this process's [K, share, ...]
    rows, each device holding its columns (for `make_train_step(gathered=True)`); labels are
    class indices (int32) or target distributions (float32 [..., C])."""
    local_labels = np.asarray(local_labels)
    dtype = np.int32 if np.issubdtype(local_labels.dtype, np.integer) else np.float32
    return (_put_columns(mesh, np.asarray(local_images, np.uint8)), _put_columns(mesh, local_labels.astype(dtype)))
