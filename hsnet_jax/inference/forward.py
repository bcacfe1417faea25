"""The one evaluation forward path: validation in the training loop, `evaluate`, `predict`
and the exports all run these functions, so they give the same numbers from the same pixels."""

from __future__ import annotations

import math
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hsnet_jax.data.augment import preprocess_eval
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import HSNet
from hsnet_jax.runtime.devices import DATA, replicate

PyTree = Any


def make_eval_forward(model: HSNet, image_size: int, mesh: Mesh, with_gates: bool = False) -> Callable:
    """`forward(variables, images_uint8 [B,H,W,3] sharded over "data") -> logits [B, classes]`
    (with `with_gates`, FGAL models: `(logits, gates [B, 3])` from the same pass): the jitted
    evaluation program (resize + `normalize`, then the model in inference mode)."""

    def device_fn(variables, images):
        x = preprocess_eval(images, image_size)
        if with_gates:
            logits, features = model.apply(variables, x, train=False, return_features=True)
            return logits, features["gates"].astype(jnp.float32)
        return model.apply(variables, x, train=False)

    return jax.jit(jax.shard_map(device_fn, mesh=mesh, in_specs=(P(), P(DATA)),
                                 out_specs=P(DATA), check_vma=False))


def make_predict_fn(model: HSNet, image_size: int, mesh: Mesh, batch_size: int = 256,
                    with_gates: bool = False, small_batches: bool = False) -> Callable[[PyTree, np.ndarray], Any]:
    """Returns `predict(variables, images_uint8) -> float32 logits [N, classes]` (numpy), or
    with `with_gates` (FGAL models) `(logits, gates [N, 3])` from the same forward pass.

    The one evaluation forward path (validation in the training loop, `evaluate`,
    `predict`): resize + `normalize` (`preprocess_eval`), then the model in inference mode,
    sharded over the mesh in batches of `batch_size` (rounded up to a multiple of the device
    count); the last partial batch is padded, so one compiled shape serves every N. With
    `small_batches` it is padded only to the next power of two (times the device count), one
    compiled shape per size: a server answering one face at a time does not pay for
    `batch_size` of them (on a CPU the cost grows with the batch).
    `images_uint8` is this process's full copy of the images, same on every process.
    """
    n_dev = mesh.devices.size
    batch_size = -(-batch_size // n_dev) * n_dev
    sharding = NamedSharding(mesh, P(DATA))
    forward = make_eval_forward(model, image_size, mesh, with_gates)

    def padded(n: int) -> int:
        if not small_batches:
            return batch_size
        return min(batch_size, n_dev * 2 ** math.ceil(math.log2(-(-n // n_dev))))

    def predict(variables: PyTree, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise HSNetError(f"predict expects uint8 images [N,H,W,3], got {images.dtype} {images.shape}")
        variables = replicate(mesh, {"params": variables["params"],
                                     "batch_stats": variables["batch_stats"]})
        n, out = len(images), []
        for start in range(0, n, batch_size):
            chunk = images[start:start + batch_size]
            size = padded(len(chunk))
            if len(chunk) < size:
                pad = np.zeros((size - len(chunk),) + images.shape[1:], np.uint8)
                chunk = np.concatenate([chunk, pad])
            share = size // jax.process_count()
            first = jax.process_index() * share
            batch = jax.make_array_from_process_local_data(
                sharding, chunk[first:first + share], chunk.shape)
            outputs = forward(variables, batch)
            if jax.process_count() > 1:
                outputs = multihost_utils.process_allgather(outputs, tiled=True)
            out.append(jax.tree.map(lambda a: np.asarray(a, np.float32), outputs))
        if not out:
            empty = np.zeros((0, model.num_classes), np.float32)
            return (empty, np.zeros((0, 3), np.float32)) if with_gates else empty
        return jax.tree.map(lambda *parts: np.concatenate(parts)[:n], *out)

    return predict
