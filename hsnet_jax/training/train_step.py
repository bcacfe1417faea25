"""The train step, written for one device and mapped over all.

Every function here follows docs/design.md section 7: the per-device code sees its shard of the
global batch, averages gradients explicitly with `lax.pmean(..., "data")`, and BatchNorm
averages its statistics over the same axis; `jax.shard_map` over a 1-D mesh inside `jax.jit`
runs it on 1 GPU, 8 GPUs, a TPU slice or several hosts unchanged.

Why the step looks the way it does (issue 5, throughput): the uint8 dataset lives on every
device and only int32 indices are fed (or, when it does not fit there, each dispatch's rows
are fed: `hsnet_jax.training.placement`); `steps_per_dispatch` steps run in one dispatch with
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
from jax.sharding import Mesh, PartitionSpec as P

from hsnet_jax.data.augment import augment_batch
from hsnet_jax.models import HSNet
from hsnet_jax.runtime.devices import DATA
from hsnet_jax.training.plateau import PlateauState

PyTree = Any
LOSSES = ("cross_entropy", "multi_target")
MULTI_TARGET_EPSILON = 0.001  # microsoft/FERPlus ferplus.py: "to avoid ill-conditioned computation"


class TrainState(flax.struct.PyTreeNode):
    """Everything a step changes; checkpointed whole, so resuming is exact.

    `plateau` is PyTorch's ReduceLROnPlateau as a pytree (`hsnet_jax.training.plateau`); its `scale`
    multiplies Adam's updates and is advanced once per epoch from the validation loss, not by
    the step.
    """

    step: jax.Array  # global step count, int32
    params: PyTree
    batch_stats: PyTree
    opt_state: optax.OptState
    plateau: PlateauState


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
    """Step 0 of a run; `plateau` is the scheduler's initial state (`hsnet_jax.training.plateau.init_state()`)."""
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


def soft_cross_entropy(logits: jax.Array, targets: jax.Array, class_weights: jax.Array | None = None) -> jax.Array:
    """Per-example -sum_c w_c t_c log softmax(z)_c for target distributions `targets` [..., C]:
    PyTorch's `cross_entropy` with probability targets (and `weight`), before its mean. A
    one-hot target gives the usual cross-entropy of its class."""
    weighted = targets if class_weights is None else targets * class_weights
    return -jnp.sum(weighted * jax.nn.log_softmax(_at_least_float32(logits)), axis=-1)


def multi_target_loss(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """FERPlus's multi_target loss (microsoft/FERPlus train.py): -log max_c(t_c p_c), with the
    target 1 on every class voted by at least 30% (0.001 elsewhere, as its reader adds)."""
    marked = jnp.where(targets > 0, 1.0 - MULTI_TARGET_EPSILON, 0.0) + MULTI_TARGET_EPSILON
    return -jnp.log(jnp.max(marked * jax.nn.softmax(_at_least_float32(logits)), axis=-1))


def _at_least_float32(logits: jax.Array) -> jax.Array:
    """bfloat16 logits are scored in float32, float64 ones (the parity tests) stay float64."""
    return logits.astype(jnp.promote_types(logits.dtype, jnp.float32))


def as_targets(labels: jax.Array, num_classes: int) -> jax.Array:
    """Class indices [...] as one-hot float32 targets [..., C]; distributions stay as they are."""
    if jnp.issubdtype(labels.dtype, jnp.integer):
        return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    return labels.astype(jnp.float32)


def hits(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """1.0 where the predicted class has the largest target (the majority class; for FERPlus's
    multi_target, whose targets are equal on every class over 30% of the votes, any of them)."""
    chosen = jnp.take_along_axis(targets, jnp.argmax(logits, -1)[:, None], axis=-1)[:, 0]
    return (chosen >= targets.max(-1)).astype(jnp.float32)


def batch_loss(logits: jax.Array, y: jax.Array, targets: jax.Array, class_weights: jax.Array | None = None,
               loss: str = "cross_entropy", axis: str | None = None) -> jax.Array:
    """This device's share of the global batch's loss, reduced as PyTorch's `cross_entropy`
    reduces it (the shares' `pmean` over `axis` is the global value): the mean over examples,
    except for class indices `y` with `class_weights`, where PyTorch divides the weighted sum
    by the sum of the examples' weights (`nn.CrossEntropyLoss(weight=w)`), here the global
    batch's."""
    if loss == "multi_target":
        return multi_target_loss(logits, targets).mean()
    per_example = soft_cross_entropy(logits, targets, class_weights)
    if class_weights is None or not jnp.issubdtype(y.dtype, jnp.integer):
        return per_example.mean()
    return per_example.sum() / _pmean(class_weights[y].sum(), axis)  # pmean: the global sum / devices


def _device_loss_and_grads(model: HSNet, params: PyTree, batch_stats: PyTree, x: jax.Array,
                           y: jax.Array, axis: str | None, class_weights: jax.Array | None = None,
                           loss: str = "cross_entropy"):
    """Loss, accuracy, gradients and new BatchNorm statistics on one device's shard, all
    averaged over `axis` (None: one device). `y`: class indices or target distributions
    [B, C]; a prediction is right when its class has the largest target (FERPlus: the
    majority; multi_target: any class over 30% of the votes). Under KTL only the non-stem
    parameters are differentiated; the stem's gradient is an explicit zero that the
    optimiser's `set_to_zero` ignores."""
    frozen = {"stem": params["stem"]} if model.freeze_stem else {}
    trainable = {k: v for k, v in params.items() if k not in frozen}

    def loss_fn(trainable):
        logits, updates = model.apply({"params": {**trainable, **frozen}, "batch_stats": batch_stats},
                                      x, train=True, mutable=["batch_stats"])
        targets = as_targets(y, logits.shape[-1])
        return batch_loss(logits, y, targets, class_weights, loss, axis), (logits, targets, updates["batch_stats"])

    (value, (logits, targets, new_stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
    grads = {**grads, **jax.tree.map(jnp.zeros_like, frozen)}
    grads = _pmean(grads, axis)
    accuracy = jnp.mean(hits(logits, targets))
    value, accuracy = _pmean((value, accuracy), axis)
    return value, accuracy, grads, new_stats


def _shard_batch(state: TrainState, images: jax.Array, labels: jax.Array, idx: jax.Array,
                 image_size: int, max_rotation: float, seed: int):
    return _augment_shard(seed, state.step, images[idx], image_size, max_rotation), labels[idx]


def make_train_step(model: HSNet, tx: optax.GradientTransformation, mesh: Mesh, *, image_size: int,
                    max_rotation: float, seed: int, gathered: bool = False,
                    class_weights: np.ndarray | None = None, loss: str = "cross_entropy") -> Callable:
    """Returns `step(state, images, labels, idx) -> (state, {"loss": [K], "accuracy": [K]})`,
    or with `gathered`, `step(state, batch_images, batch_labels) -> ...`. `labels` are class
    indices or target distributions (float [N, C]: soft labels, `hsnet_jax.training.targets`);
    `class_weights` [C] weight the cross-entropy (config.class_balance "loss"); `loss`
    "multi_target" is FERPlus's multi-target loss.

    Default (data placement `device`): `images` uint8 [N,H,W,3] and `labels` int32 [N] are the
    training set, replicated on every device (`replicate`); `idx` int32 [K, global_batch]
    (`put_indices`) holds K steps' rows, gathered on the device. `gathered` (placements `host`
    and `stream`): the K steps' rows themselves, uint8 [K, global_batch, H, W, 3] and int32
    [K, global_batch] (`put_batches`). The two differ only in that gather: the augmentation
    and everything after it are the same code, so the numbers are the same. The K steps run
    in one dispatch by `lax.scan`; per-step losses come back so a non-finite one can be pinned
    to its step. `state` is donated.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    model, axis = _for_mesh(model, mesh)
    weights = None if class_weights is None else jnp.asarray(class_weights, jnp.float32)

    def one(state: TrainState, x, y):
        x = _augment_shard(seed, state.step, x, image_size, max_rotation)
        value, accuracy, grads, new_stats = _device_loss_and_grads(
            model, state.params, state.batch_stats, x, y, axis, weights, loss)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        updates = jax.tree.map(lambda u: (state.plateau.scale * u).astype(u.dtype), updates)
        state = state.replace(step=state.step + 1, params=optax.apply_updates(state.params, updates),
                              batch_stats=new_stats, opt_state=opt_state)
        return state, {"loss": value, "accuracy": accuracy}

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
