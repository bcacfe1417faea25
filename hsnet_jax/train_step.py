"""The train step and the evaluation forward pass, written for one device and mapped over all.

Every function here follows docs/design.md section 7: the per-device code sees its shard of the
global batch, averages gradients explicitly with `lax.pmean(..., "data")`, and BatchNorm
averages its statistics over the same axis; `jax.shard_map` over a 1-D mesh inside `jax.jit`
runs it on 1 GPU, 8 GPUs, a TPU slice or several hosts unchanged.

Why the step looks the way it does (issue 5, throughput): the uint8 dataset lives on every
device and only int32 indices are fed (or, when it does not fit there, each dispatch's rows
are fed: `hsnet_jax.data.placement`); `steps_per_dispatch` steps run in one dispatch with
`lax.scan`; the state is donated; with a frozen (KTL) stem only the trainable subtree is
differentiated, so XLA never builds the stem's backward pass. This module imports neither
TFDS nor torch, so it runs on a bare accelerator box.
"""

from __future__ import annotations

from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from hsnet_jax.data.augment import augment_batch, preprocess_eval
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import HSNet
from hsnet_jax.plateau import PlateauState

DATA = "data"  # the one mesh axis: data parallelism

PyTree = Any


class TrainState(flax.struct.PyTreeNode):
    """Everything a step changes; checkpointed whole, so resuming is exact.

    `plateau` is PyTorch's ReduceLROnPlateau as a pytree (`hsnet_jax.plateau`); its `scale`
    multiplies Adam's updates and is advanced once per epoch from the validation loss, not by
    the step.
    """

    step: jax.Array  # global step count, int32
    params: PyTree
    batch_stats: PyTree
    opt_state: optax.OptState
    plateau: PlateauState


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


def param_labels(params: PyTree, freeze_stem: bool) -> PyTree:
    """"frozen" for every stem parameter under KTL, else "trainable": the optimiser partition."""
    return {k: jax.tree.map(lambda _: "frozen" if freeze_stem and k == "stem" else "trainable", v)
            for k, v in params.items()}


def make_optimizer(params: PyTree, *, learning_rate: float, b1: float, b2: float, eps: float,
                   freeze_stem: bool) -> optax.GradientTransformation:
    """Adam for the trainable parameters, `set_to_zero` for the frozen stem (explicit freezing)."""
    return optax.multi_transform(
        {"trainable": optax.adam(learning_rate, b1=b1, b2=b2, eps=eps), "frozen": optax.set_to_zero()},
        param_labels(params, freeze_stem))


def create_train_state(variables: PyTree, tx: optax.GradientTransformation,
                       plateau: PlateauState) -> TrainState:
    """Step 0 of a run; `plateau` is the scheduler's initial state (`hsnet_jax.plateau.init_state()`)."""
    params = variables["params"]
    return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                      batch_stats=variables["batch_stats"], opt_state=tx.init(params), plateau=plateau)


def _augment_shard(seed: int, step: jax.Array, images: jax.Array, image_size: int,
                   max_rotation: float) -> jax.Array:
    """Augments this device's shard with one key per example of the global batch.

    The key of example i of global step t is fold_in(fold_in(key(seed), t), i), where i is the
    example's position in the global batch (device index * per-device batch + row), so the
    augmentation, and with it the whole run, is the same on any number of devices and after
    a resume.
    """
    b = images.shape[0]
    first = jax.lax.axis_index(DATA) * b
    step_key = jax.random.fold_in(jax.random.key(seed), step)
    keys = jax.vmap(lambda i: jax.random.fold_in(step_key, i))(first + jnp.arange(b))
    return jax.vmap(lambda k, im: augment_batch(k, im[None], image_size, max_rotation)[0])(keys, images)


def _for_mesh(model: HSNet, mesh: Mesh) -> tuple[HSNet, str | None]:
    """The model and the axis to average over on this mesh.

    On one device every cross-device mean is the identity, yet XLA keeps each all-reduce as an
    op that copies its operands and splits the fusions around it (49 of them in one step:
    BatchNorm's forward and backward statistics and the gradients; they cost several percent
    of a CPU step). There the step leaves them out; the numbers are the same (a mean over one
    device divides by 1).
    """
    if mesh.devices.size == 1:
        return model.clone(bn_axis_name=None), None
    return model, DATA


def _pmean(tree: PyTree, axis: str | None) -> PyTree:
    return tree if axis is None else jax.lax.pmean(tree, axis)


def _device_loss_and_grads(model: HSNet, params: PyTree, batch_stats: PyTree, x: jax.Array,
                           y: jax.Array, axis: str | None):
    """Loss, accuracy, gradients and new BatchNorm statistics on one device's shard, all
    averaged over `axis` (None: one device). Under KTL only the non-stem parameters are
    differentiated; the stem's gradient is an explicit zero that the optimiser's
    `set_to_zero` ignores."""
    frozen = {"stem": params["stem"]} if model.freeze_stem else {}
    trainable = {k: v for k, v in params.items() if k not in frozen}

    def loss_fn(trainable):
        logits, updates = model.apply({"params": {**trainable, **frozen}, "batch_stats": batch_stats},
                                      x, train=True, mutable=["batch_stats"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
        return loss, (logits, updates["batch_stats"])

    (loss, (logits, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    grads = {**grads, **jax.tree.map(jnp.zeros_like, frozen)}
    grads = _pmean(grads, axis)
    accuracy = jnp.mean((jnp.argmax(logits, -1) == y).astype(jnp.float32))
    loss, accuracy = _pmean((loss, accuracy), axis)
    return loss, accuracy, grads, new_stats


def _shard_batch(state: TrainState, images: jax.Array, labels: jax.Array, idx: jax.Array,
                 image_size: int, max_rotation: float, seed: int):
    return _augment_shard(seed, state.step, images[idx], image_size, max_rotation), labels[idx]


def make_train_step(model: HSNet, tx: optax.GradientTransformation, mesh: Mesh, *, image_size: int,
                    max_rotation: float, seed: int, gathered: bool = False) -> Callable:
    """Returns `step(state, images, labels, idx) -> (state, {"loss": [K], "accuracy": [K]})`,
    or with `gathered`, `step(state, batch_images, batch_labels) -> ...`.

    Default (data placement `device`): `images` uint8 [N,H,W,3] and `labels` int32 [N] are the
    training set, replicated on every device (`replicate`); `idx` int32 [K, global_batch]
    (`put_indices`) holds K steps' rows, gathered on the device. `gathered` (placements `host`
    and `stream`): the K steps' rows themselves, uint8 [K, global_batch, H, W, 3] and int32
    [K, global_batch] (`put_batches`). The two differ only in that gather: the augmentation
    and everything after it are the same code, so the numbers are the same. The K steps run
    in one dispatch by `lax.scan`; per-step losses come back so a non-finite one can be pinned
    to its step. `state` is donated.
    """
    model, axis = _for_mesh(model, mesh)

    def one(state: TrainState, x, y):
        x = _augment_shard(seed, state.step, x, image_size, max_rotation)
        loss, accuracy, grads, new_stats = _device_loss_and_grads(
            model, state.params, state.batch_stats, x, y, axis)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: (state.plateau.scale * u).astype(u.dtype), updates)
        state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=new_stats, opt_state=opt_state)
        return state, {"loss": loss, "accuracy": accuracy}

    def run(body, state: TrainState, xs):
        # XLA:CPU runs this step 8-10x slower inside a scan (a while loop, and even a
        # length-1 scan; measured at 75 px, batch 8-16), so one step per dispatch skips the
        # scan and longer chunks are unrolled on CPU. Accelerators keep the loop. The rule is
        # chosen when the program is lowered for its platform, not from the host's default
        # backend, so a program exported for CUDA or TPU on a CPU machine has the loop.
        if jax.tree.leaves(xs)[0].shape[0] == 1:
            state, metrics = body(state, jax.tree.map(lambda a: a[0], xs))
            return state, jax.tree.map(lambda m: m[None], metrics)
        return jax.lax.platform_dependent(
            state, xs, cpu=lambda s, x: jax.lax.scan(body, s, x, unroll=True),
            default=lambda s, x: jax.lax.scan(body, s, x))

    def indexed_step(state: TrainState, images, labels, idx):
        return run(lambda s, idx_t: one(s, images[idx_t], labels[idx_t]), state, idx)

    def gathered_step(state: TrainState, images, labels):
        return run(lambda s, batch: one(s, *batch), state, (images, labels))

    # check_vma=False: gradients are per-device until the explicit pmean (pmap semantics);
    # every output is made identical across devices by that pmean and BatchNorm's.
    if gathered:
        device_step, in_specs = gathered_step, (P(), P(None, DATA), P(None, DATA))
    else:
        device_step, in_specs = indexed_step, (P(), P(), P(), P(None, DATA))
    mapped = jax.shard_map(device_step, mesh=mesh, in_specs=in_specs, out_specs=(P(), P()), check_vma=False)
    return jax.jit(mapped, donate_argnums=0)


def make_gradient_fn(model: HSNet, mesh: Mesh, *, image_size: int, max_rotation: float,
                     seed: int) -> Callable:
    """`fn(state, images, labels, idx[global_batch]) -> (loss, grads, batch_stats)`: the first
    half of one train step (same augmentation, same per-device code), for checking that a
    step's numbers do not depend on how the batch is split over devices or hosts."""
    model, axis = _for_mesh(model, mesh)

    def device_fn(state: TrainState, images, labels, idx):
        x, y = _shard_batch(state, images, labels, idx, image_size, max_rotation, seed)
        loss, _, grads, new_stats = _device_loss_and_grads(model, state.params, state.batch_stats, x, y, axis)
        return loss, grads, new_stats

    return jax.jit(jax.shard_map(device_fn, mesh=mesh, in_specs=(P(), P(), P(), P(DATA)),
                                 out_specs=P(), check_vma=False))


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
    rows, each device holding its columns (for `make_train_step(gathered=True)`)."""
    return (_put_columns(mesh, np.asarray(local_images, np.uint8)),
            _put_columns(mesh, np.asarray(local_labels, np.int32)))


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
                    with_gates: bool = False) -> Callable[[PyTree, np.ndarray], Any]:
    """Returns `predict(variables, images_uint8) -> float32 logits [N, classes]` (numpy), or
    with `with_gates` (FGAL models) `(logits, gates [N, 3])` from the same forward pass.

    The one evaluation forward path (validation in the training loop, `evaluate`,
    `predict`): resize + `normalize` (`preprocess_eval`), then the model in inference mode,
    sharded over the mesh in batches of `batch_size` (rounded up to a multiple of the device
    count); the last partial batch is padded, so one compiled shape serves every N.
    `images_uint8` is this process's full copy of the images, same on every process.
    """
    n_dev = mesh.devices.size
    batch_size = -(-batch_size // n_dev) * n_dev
    sharding = NamedSharding(mesh, P(DATA))
    forward = make_eval_forward(model, image_size, mesh, with_gates)
    share = batch_size // jax.process_count()
    first = jax.process_index() * share

    def predict(variables: PyTree, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise HSNetError(f"predict expects uint8 images [N,H,W,3], got {images.dtype} {images.shape}")
        variables = replicate(mesh, {"params": variables["params"],
                                     "batch_stats": variables["batch_stats"]})
        n, out = len(images), []
        for start in range(0, n, batch_size):
            chunk = images[start:start + batch_size]
            if len(chunk) < batch_size:
                pad = np.zeros((batch_size - len(chunk),) + images.shape[1:], np.uint8)
                chunk = np.concatenate([chunk, pad])
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
