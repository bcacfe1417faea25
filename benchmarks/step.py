r"""Throughput of the exact train step and evaluation path that `hsnet_jax.train` runs.

  python -m benchmarks.step [--batch_size 32] [--image_size 224] [--dtype bfloat16] \
      [--ktl] [--steps 50] [--steps_per_dispatch 16] [--epoch_train_size 11044]

Prints one JSON line. The data are random uint8 images of `--source_size` (RAF-DB's aligned
faces are 100x100) already on the devices, so the number is the step's, not a data
pipeline's: augmentation (flip, rotation, resize to `--image_size`) runs inside the step as
in training. Timings are synchronised with `block_until_ready`; `train_img_per_s` is the
median over timed dispatches of `steps_per_dispatch * batch_size / seconds`.

`bare_img_per_s` is the same model's forward + backward + Adam update alone (`_BareStep`), timed
in the same run, each trainer dispatch followed by the bare step on as many images, so both
see the same load; `train_over_bare` is their ratio: 1 - it is what the trainer's step adds
(gather, augmentation, sharding, optimiser partition, metrics). `peak_device_bytes` is the
device's peak allocation where the backend reports it (GPU, TPU; CPU does not).

FLOPs come from XLA's cost analysis of the compiled step. XLA counts a loop body once, so the
K-step program reports the FLOPs of one step on one device; per image is that over the
per-device batch. `--epoch_train_size N` also times one whole epoch of N training images
plus validation of `--epoch_val_size` images (the paper's RAF-DB recipe: 11,044 / 1,227 at
batch 32) and projects `--num_epochs` of it; checkpoint writes are not included.

`--compare_torch` (float32 only; needs torch) also builds the same network in PyTorch eager
(`convert/torch_hsnet.py` via `benchmarks/torch_eager.py`: Adam, cross-entropy, the stem frozen
as `--ktl` says, torch's default threads) and times it in the same process: each round runs the
trainer's dispatch, the bare step and torch's step on as many images, then the inference
forward at `--eval_batch_size` of both (ours a plain `jax.jit` with every array an argument,
torch's in eval mode under `no_grad`), alternately. It prints both medians and their ratios
(`bare_over_torch`, `train_over_torch`, `infer_over_torch`: > 1 means faster than PyTorch)
and both sides' parameter counts. On a shared machine only these interleaved ratios compare.

Without `--compare_torch` it imports neither TFDS nor torch: it runs on a box with only jax,
flax, optax, orbax and ml-collections.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from typing import Any

import jax
import numpy as np
import optax
from absl import app, flags

from hsnet_jax.training import plateau, train_step
from hsnet_jax.runtime.devices import DATA, check_batch_size, make_mesh, put_indices, replicate
from hsnet_jax.inference.forward import make_predict_fn
from hsnet_jax.config import base_config
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import DTYPES, create_model, init_variables

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_integer("batch_size", 32, "Global batch size.")
    flags.DEFINE_integer("image_size", 224, "Model input size (the step resizes to it).")
    flags.DEFINE_integer("source_size", 100, "Size of the stored uint8 images.")
    flags.DEFINE_enum("dtype", "bfloat16", list(DTYPES), "Compute dtype.")
    flags.DEFINE_bool("ktl", False, "Frozen stem (the paper's KTL setting).")
    flags.DEFINE_bool("use_dib", True, "Dilated Inception blocks (False: Inception-ResNet-v1 body).")
    flags.DEFINE_bool("use_fgal", True, "FGAL head (False: one linear classifier).")
    flags.DEFINE_integer("steps", 50, "Timed train steps (rounded up to whole dispatches).")
    flags.DEFINE_integer("steps_per_dispatch", 0, "Train steps per device call (lax.scan); 0: 1 on CPU "
                         "(what the CPU configs use), 16 on accelerators.")
    flags.DEFINE_integer("warmup", 2, "Untimed dispatches first (compilation, autotuning).")
    flags.DEFINE_integer("eval_batch_size", 256, "Batch of the evaluation path.")
    flags.DEFINE_integer("num_classes", 7, "Classes.")
    flags.DEFINE_integer("epoch_train_size", 0, "> 0: also time one epoch of this many images.")
    flags.DEFINE_integer("epoch_val_size", 1227, "Validation images of that epoch.")
    flags.DEFINE_integer("num_epochs", 500, "Epochs the projected schedule has.")
    flags.DEFINE_bool("compare_torch", False, "Also time the same network in PyTorch eager (float32, "
                      "convert/torch_hsnet.py), interleaved with this one; needs torch.")


def _cost_flops(compiled: Any) -> float | None:
    """FLOPs of a compiled program (list-or-dict across jax versions); None if XLA has none."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and cost.get("flops") else None


def _peak_bytes(device: jax.Device) -> int | None:
    """The device's peak allocated bytes so far (`memory_stats`; GPU and TPU report it, CPU does not)."""
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    return int(stats["peak_bytes_in_use"]) if stats and "peak_bytes_in_use" in stats else None


def _count(tree) -> int:
    return sum(int(np.prod(np.shape(leaf))) for leaf in jax.tree.leaves(tree))


class _BareForward:
    """The model's inference forward alone (`train=False`), variables and images arguments of a
    plain `jax.jit`: what `--compare_torch` sets beside torch's eval-mode forward."""

    def __init__(self, model, variables, batch: int, image_size: int) -> None:
        self._fn = jax.jit(lambda variables, x: model.apply(variables, x, train=False))
        x = np.random.default_rng(2).standard_normal((batch, image_size, image_size, 3), np.float32)
        self._args = jax.device_put((variables, x), jax.local_devices()[0])

    def run(self) -> float:
        """One forward; returns its seconds."""
        jax.block_until_ready(self._args)
        t0 = time.perf_counter()
        jax.block_until_ready(self._fn(*self._args))
        return time.perf_counter() - t0


class _BareStep:
    """The same model's forward + backward + Adam update and nothing else: one device's batch,
    already augmented and on the device, every array an argument of a plain `jax.jit` (no
    shard_map, gather, augmentation, optimiser partition or metrics). Only the trainable
    subtree is differentiated and updated, as in the trainer. Its rate, times the device
    count, is what the trainer's step could reach with zero overhead."""

    def __init__(self, model, variables, optimizer: Any, batch: int, image_size: int,
                 num_classes: int) -> None:
        frozen_keys = ("stem",) if model.freeze_stem else ()
        params = variables["params"]
        trainable = {k: v for k, v in params.items() if k not in frozen_keys}
        frozen = {k: params[k] for k in frozen_keys}
        tx = optax.adam(optimizer.learning_rate, b1=optimizer.b1, b2=optimizer.b2, eps=optimizer.eps)

        def step(trainable, frozen, batch_stats, opt_state, x, y):
            def loss_fn(trainable):
                logits, updates = model.apply({"params": {**trainable, **frozen}, "batch_stats": batch_stats},
                                              x, train=True, mutable=["batch_stats"])
                return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), updates
            (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable)
            deltas, opt_state = tx.update(grads, opt_state, trainable)
            return optax.apply_updates(trainable, deltas), updates["batch_stats"], opt_state, loss

        device = jax.local_devices()[0]
        rng = np.random.default_rng(1)
        put = lambda a: jax.device_put(a, device)  # noqa: E731
        self._fn = jax.jit(step, donate_argnums=(0, 2, 3))
        self._args = [put(trainable), put(frozen), put(variables["batch_stats"]),
                      put(tx.init(trainable)),
                      put(rng.standard_normal((batch, image_size, image_size, 3), np.float32)),
                      put(rng.integers(0, num_classes, batch).astype(np.int32))]

    def run(self, k: int) -> float:
        """Runs k steps back to back; returns their seconds."""
        jax.block_until_ready(self._args)
        t0 = time.perf_counter()
        trainable, frozen, stats, opt_state, x, y = self._args
        for _ in range(k):
            trainable, stats, opt_state, loss = self._fn(trainable, frozen, stats, opt_state, x, y)
        jax.block_until_ready((trainable, stats, opt_state, loss))
        seconds = time.perf_counter() - t0
        self._args = [trainable, frozen, stats, opt_state, x, y]
        return seconds


def run(*, batch_size: int = 32, image_size: int = 224, source_size: int = 100,
        dtype: str = "bfloat16", ktl: bool = False, use_dib: bool = True, use_fgal: bool = True,
        steps: int = 50, steps_per_dispatch: int = 0, warmup: int = 2, eval_batch_size: int = 256,
        num_classes: int = 7, epoch_train_size: int = 0, epoch_val_size: int = 1227,
        num_epochs: int = 500, compare_torch: bool = False) -> dict[str, Any]:
    """Builds the trainer's model, optimiser and step from the base config and times them
    (and, with `compare_torch`, the same network in PyTorch eager, interleaved)."""
    if compare_torch and dtype != "float32":
        raise HSNetError(f"--compare_torch times PyTorch in float32; use --dtype float32, not {dtype}")
    if steps_per_dispatch <= 0:
        steps_per_dispatch = 1 if jax.default_backend() == "cpu" else 16
    config = base_config("benchmark")
    config.update(batch_size=batch_size, image_size=image_size, dtype=dtype,
                  steps_per_dispatch=steps_per_dispatch, eval_batch_size=eval_batch_size)
    config.model.update(use_dib=use_dib, use_fgal=use_fgal)
    mesh = make_mesh()
    per_device = check_batch_size(batch_size, mesh)
    # KTL's stem is frozen whatever its values are; random ones time the same.
    model = create_model(config, num_classes, bn_axis_name=DATA).clone(freeze_stem=ktl)
    variables = init_variables(model, image_size, 0)
    tx = train_step.make_optimizer(variables["params"], freeze_stem=ktl, **config.optimizer)
    state = replicate(mesh, train_step.create_train_state(variables, tx, plateau.init_state()))
    step_fn = train_step.make_train_step(model, tx, mesh, image_size=image_size,
                                         max_rotation=config.max_rotation, seed=0)

    rng = np.random.default_rng(0)
    n_images = max(batch_size * steps_per_dispatch, epoch_train_size, 1024)
    host_images = rng.integers(0, 256, (n_images, source_size, source_size, 3), dtype=np.uint8)
    images, labels = replicate(
        mesh, (host_images, rng.integers(0, num_classes, n_images).astype(np.int32)))
    k = steps_per_dispatch
    chunk = lambda: put_indices(  # noqa: E731
        mesh, rng.integers(0, n_images, (k, batch_size // jax.process_count()), dtype=np.int32))

    compiled = step_fn.lower(state, images, labels, chunk()).compile()
    flops = _cost_flops(compiled)
    bare = _BareStep(model.clone(bn_axis_name=None), variables, config.optimizer, per_device, image_size,
                     num_classes)
    torch_side = _torch_side(compare_torch, per_device, eval_batch_size, image_size, num_classes, ktl,
                             use_dib, use_fgal, config.optimizer.learning_rate)
    for _ in range(warmup):
        state, metrics = step_fn(state, images, labels, chunk())
        bare.run(k)
        if torch_side:
            torch_side.train(k)
    jax.block_until_ready((state, metrics))
    # Interleaved rounds: one trainer dispatch, then the bare step for as many images, so both
    # rates see the same load on a shared machine; the ratio is of the two medians.
    rates, bare_rates, torch_rates = [], [], []
    for _ in range(math.ceil(steps / k)):
        idx = chunk()
        jax.block_until_ready(idx)
        t0 = time.perf_counter()
        state, metrics = step_fn(state, images, labels, idx)
        jax.block_until_ready((state, metrics))
        rates.append(k * batch_size / (time.perf_counter() - t0))
        bare_rates.append(k * per_device / bare.run(k))
        if torch_side:
            torch_rates.append(k * per_device / torch_side.train(k))
    train_rate, bare_rate = statistics.median(rates), statistics.median(bare_rates)
    if not np.isfinite(np.asarray(metrics["loss"])).all():
        raise HSNetError("the benchmarked step produced a non-finite loss")
    peak = _peak_bytes(jax.local_devices()[0])

    predict = make_predict_fn(model, image_size, mesh, eval_batch_size)
    eval_images = host_images[:4 * eval_batch_size]
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    predict(variables, eval_images[:eval_batch_size])  # compile
    t0 = time.perf_counter()
    predict(variables, eval_images)
    eval_rate = len(eval_images) / (time.perf_counter() - t0)

    result: dict[str, Any] = dict(
        device_kind=jax.devices()[0].device_kind, device_count=jax.device_count(),
        jax_version=jax.__version__, batch_size=batch_size, image_size=image_size, dtype=dtype,
        ktl=ktl, use_dib=use_dib, use_fgal=use_fgal, steps_per_dispatch=k,
        timed_steps=len(rates) * k, train_img_per_s=round(train_rate, 1),
        bare_img_per_s=round(bare_rate * jax.device_count(), 1),
        train_over_bare=round(train_rate / (bare_rate * jax.device_count()), 3),
        eval_img_per_s=round(eval_rate, 1),
        peak_device_bytes=peak if peak is not None else "not reported by this backend")
    if flops:
        result["train_gflop_per_image"] = round(flops / per_device / 1e9, 3)
        result["train_tflop_per_s"] = round(flops / per_device * train_rate / 1e12, 3)
    if torch_side:
        result.update(_compare(torch_side, model.clone(bn_axis_name=None), variables, ktl, len(rates),
                               bare_rate, train_rate, statistics.median(torch_rates), eval_batch_size,
                               image_size))
    if epoch_train_size:
        result.update(_time_epoch(step_fn, predict, state, images, labels, host_images, mesh,
                                  batch_size, k, epoch_train_size, epoch_val_size, num_epochs))
    return result


def _torch_side(compare: bool, batch: int, eval_batch: int, image_size: int, num_classes: int, ktl: bool,
                use_dib: bool, use_fgal: bool, learning_rate: float):
    """`benchmarks.torch_eager.TorchEager` for the same shape, or None without `compare`."""
    if not compare:
        return None
    if jax.device_count() != 1:
        raise HSNetError("--compare_torch times one CPU device against PyTorch; run it on one device")
    try:
        from benchmarks import torch_eager
    except ImportError as e:
        raise HSNetError(f"--compare_torch needs torch and the repository's benchmarks/ ({e})") from e
    return torch_eager.TorchEager(batch_size=batch, eval_batch_size=eval_batch, image_size=image_size,
                                  num_classes=num_classes, freeze_stem=ktl, use_dib=use_dib, use_fgal=use_fgal,
                                  learning_rate=learning_rate)


def _compare(torch_side, model, variables, ktl: bool, rounds: int, bare_rate: float, train_rate: float,
             torch_rate: float, eval_batch: int, image_size: int) -> dict[str, Any]:
    """The PyTorch columns: train rates (timed above), then both inference forwards alternately."""
    from benchmarks import torch_eager

    forward = _BareForward(model, variables, eval_batch, image_size)
    forward.run(), torch_side.infer()  # compile, warm up
    ours, theirs = [], []
    for _ in range(max(rounds, 5)):
        ours.append(eval_batch / forward.run())
        theirs.append(eval_batch / torch_side.infer())
    infer_rate, torch_infer = statistics.median(ours), statistics.median(theirs)
    params = _count(variables["params"])
    return dict(torch_eager.versions(), torch_train_img_per_s=round(torch_rate, 1),
                bare_over_torch=round(bare_rate / torch_rate, 3), train_over_torch=round(train_rate / torch_rate, 3),
                infer_img_per_s=round(infer_rate, 1), torch_infer_img_per_s=round(torch_infer, 1),
                infer_over_torch=round(infer_rate / torch_infer, 3), params=params,
                trainable_params=params - (_count(variables["params"]["stem"]) if ktl else 0),
                torch_params=torch_side.params, torch_trainable_params=torch_side.trainable_params,
                torch_losses=[round(v, 4) for v in torch_side.losses])


def _time_epoch(step_fn, predict, state, images, labels, host_images, mesh, batch_size, k,
                train_size, val_size, num_epochs) -> dict[str, Any]:
    """One epoch as the trainer runs it: its index chunks, its dispatches, then validation."""
    steps, share = train_size // batch_size, batch_size // jax.process_count()
    rows = np.random.default_rng(1).permutation(len(host_images))[:steps * share]
    rows = rows.reshape(steps, share).astype(np.int32)
    if steps % k:  # the epoch's last, shorter dispatch is another program: compile it untimed
        state, _ = step_fn(state, images, labels, put_indices(mesh, rows[:steps % k]))
    t0 = time.perf_counter()
    for first in range(0, steps, k):
        state, metrics = step_fn(state, images, labels, put_indices(mesh, rows[first:first + k]))
    jax.block_until_ready((state, metrics))
    train_s = time.perf_counter() - t0
    predict({"params": state.params, "batch_stats": state.batch_stats}, host_images[:val_size])
    epoch_s = time.perf_counter() - t0
    return dict(epoch_train_images=steps * batch_size, epoch_val_images=val_size,
                epoch_seconds=round(epoch_s, 3), epoch_train_seconds=round(train_s, 3),
                schedule_minutes=round(num_epochs * epoch_s / 60, 2), schedule_epochs=num_epochs)


def main(argv) -> int:
    del argv
    try:
        result = run(**{name: FLAGS[name].value for name in (
            "batch_size", "image_size", "source_size", "dtype", "ktl", "use_dib", "use_fgal",
            "steps", "steps_per_dispatch", "warmup", "eval_batch_size", "num_classes",
            "epoch_train_size", "epoch_val_size", "num_epochs", "compare_torch")})
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
