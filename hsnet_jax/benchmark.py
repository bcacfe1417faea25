r"""Throughput of the exact train step and evaluation path that `hsnet_jax.train` runs.

  python -m hsnet_jax.benchmark [--batch_size 32] [--image_size 224] [--dtype bfloat16] \
      [--ktl] [--steps 50] [--steps_per_dispatch 16] [--epoch_train_size 11044]

Prints one JSON line. The data are random uint8 images of `--source_size` (RAF-DB's aligned
faces are 100x100) already on the devices, so the number is the step's, not a data
pipeline's: augmentation (flip, rotation, resize to `--image_size`) runs inside the step as
in training. Timings are synchronised with `block_until_ready`; `train_img_per_s` is the
median over timed dispatches of `steps_per_dispatch * batch_size / seconds`.

FLOPs come from XLA's cost analysis of the compiled step. XLA counts a loop body once, so the
K-step program reports the FLOPs of one step on one device; per image is that over the
per-device batch. `--epoch_train_size N` also times one whole epoch of N training images
plus validation of `--epoch_val_size` images (the paper's RAF-DB recipe: 11,044 / 1,227 at
batch 32) and projects `--num_epochs` of it; checkpoint writes are not included.

Imports neither TFDS nor torch: it runs on a box with only jax, flax, optax, orbax and
ml-collections.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from hsnet_jax import plateau, train_step
from hsnet_jax.config import base_config
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import DTYPES, create_model

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
    flags.DEFINE_integer("steps_per_dispatch", 16, "Train steps per device call (lax.scan).")
    flags.DEFINE_integer("warmup", 2, "Untimed dispatches first (compilation, autotuning).")
    flags.DEFINE_integer("eval_batch_size", 256, "Batch of the evaluation path.")
    flags.DEFINE_integer("num_classes", 7, "Classes.")
    flags.DEFINE_integer("epoch_train_size", 0, "> 0: also time one epoch of this many images.")
    flags.DEFINE_integer("epoch_val_size", 1227, "Validation images of that epoch.")
    flags.DEFINE_integer("num_epochs", 500, "Epochs the projected schedule has.")


def _cost_flops(compiled: Any) -> float | None:
    """FLOPs of a compiled program (list-or-dict across jax versions); None if XLA has none."""
    try:
        cost = compiled.cost_analysis()
    except Exception:  # noqa: BLE001 - some backends do not implement it
        return None
    if isinstance(cost, (list, tuple)):
        cost = cost[0] if cost else None
    return float(cost["flops"]) if cost and cost.get("flops") else None


def run(*, batch_size: int = 32, image_size: int = 224, source_size: int = 100,
        dtype: str = "bfloat16", ktl: bool = False, use_dib: bool = True, use_fgal: bool = True,
        steps: int = 50, steps_per_dispatch: int = 16, warmup: int = 2, eval_batch_size: int = 256,
        num_classes: int = 7, epoch_train_size: int = 0, epoch_val_size: int = 1227,
        num_epochs: int = 500) -> dict[str, Any]:
    """Builds the trainer's model, optimiser and step from the base config and times them."""
    config = base_config("benchmark")
    config.update(batch_size=batch_size, image_size=image_size, dtype=dtype,
                  steps_per_dispatch=steps_per_dispatch, eval_batch_size=eval_batch_size)
    config.model.update(use_dib=use_dib, use_fgal=use_fgal)
    mesh = train_step.make_mesh()
    per_device = train_step.check_batch_size(batch_size, mesh)
    # KTL's stem is frozen whatever its values are; random ones time the same.
    model = create_model(config, num_classes, bn_axis_name=train_step.DATA).clone(freeze_stem=ktl)
    variables = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, image_size, image_size, 3)),
                                           train=False))()
    tx = train_step.make_optimizer(variables["params"], freeze_stem=ktl, **config.optimizer)
    state = train_step.replicate(mesh, train_step.create_train_state(variables, tx, plateau.init_state()))
    step_fn = train_step.make_train_step(model, tx, mesh, image_size=image_size,
                                         max_rotation=config.max_rotation, seed=0)

    rng = np.random.default_rng(0)
    n_images = max(batch_size * steps_per_dispatch, epoch_train_size, 1024)
    host_images = rng.integers(0, 256, (n_images, source_size, source_size, 3), dtype=np.uint8)
    images, labels = train_step.replicate(
        mesh, (host_images, rng.integers(0, num_classes, n_images).astype(np.int32)))
    k = steps_per_dispatch
    chunk = lambda: train_step.put_indices(  # noqa: E731
        mesh, rng.integers(0, n_images, (k, batch_size // jax.process_count()), dtype=np.int32))

    compiled = step_fn.lower(state, images, labels, chunk()).compile()
    flops = _cost_flops(compiled)
    for _ in range(warmup):
        state, metrics = step_fn(state, images, labels, chunk())
    jax.block_until_ready((state, metrics))
    rates = []
    for _ in range(math.ceil(steps / k)):
        idx = chunk()
        jax.block_until_ready(idx)
        t0 = time.perf_counter()
        state, metrics = step_fn(state, images, labels, idx)
        jax.block_until_ready((state, metrics))
        rates.append(k * batch_size / (time.perf_counter() - t0))
    train_rate = statistics.median(rates)
    if not np.isfinite(np.asarray(metrics["loss"])).all():
        raise HSNetError("the benchmarked step produced a non-finite loss")

    predict = train_step.make_predict_fn(model, image_size, mesh, eval_batch_size)
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
        eval_img_per_s=round(eval_rate, 1))
    if flops:
        result["train_gflop_per_image"] = round(flops / per_device / 1e9, 3)
        result["train_tflop_per_s"] = round(flops / per_device * train_rate / 1e12, 3)
    if epoch_train_size:
        result.update(_time_epoch(step_fn, predict, state, images, labels, host_images, mesh,
                                  batch_size, k, epoch_train_size, epoch_val_size, num_epochs))
    return result


def _time_epoch(step_fn, predict, state, images, labels, host_images, mesh, batch_size, k,
                train_size, val_size, num_epochs) -> dict[str, Any]:
    """One epoch as the trainer runs it: its index chunks, its dispatches, then validation."""
    steps, share = train_size // batch_size, batch_size // jax.process_count()
    rows = np.random.default_rng(1).permutation(len(host_images))[:steps * share]
    rows = rows.reshape(steps, share).astype(np.int32)
    if steps % k:  # the epoch's last, shorter dispatch is another program: compile it untimed
        state, _ = step_fn(state, images, labels, train_step.put_indices(mesh, rows[:steps % k]))
    t0 = time.perf_counter()
    for first in range(0, steps, k):
        state, metrics = step_fn(state, images, labels, train_step.put_indices(mesh, rows[first:first + k]))
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
            "epoch_train_size", "epoch_val_size", "num_epochs")})
    except HSNetError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    define_flags()
    app.run(main)
