"""Exports (lowers to StableHLO) the train step, the gathered-rows step and the evaluation
forward for CUDA and TPU on 8 and on 1 forced CPU devices, and prints, as one JSON line, what
each exported program contains (platforms, devices, all-reduces, loops, custom calls), for
tests/test_export.py::test_step_and_evaluation_lower_for_cuda_and_tpu.

Usage: python -m tests.programs.export_step

Its own interpreter: the 8 devices are XLA:CPU's forced host devices (XLA_FLAGS, set by the
test), which must be set before jax starts and must not leak into the test process.
"""

import json
import re
import sys

import jax
import jax.numpy as jnp

from hsnet_jax.inference.forward import make_eval_forward
from hsnet_jax.models import HSNet
from hsnet_jax.runtime.devices import DATA, make_mesh
from hsnet_jax.training import plateau, train_step


def describe(name: str, fn, *args) -> dict:
    exported = jax.export.export(fn, platforms=("cuda", "tpu"))(*args)
    text = exported.mlir_module()
    return dict(name=name, platforms=list(exported.platforms), devices=exported.nr_devices,
                all_reduce=text.count("all_reduce"), loops=text.count("stablehlo.while"),
                custom_calls=sorted(set(re.findall(r"custom_call @(\w+)", text))))


def main() -> None:
    assert jax.device_count() == 8, jax.devices()
    model = HSNet(7, freeze_stem=True, dtype=jnp.bfloat16, bn_axis_name=DATA)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 75, 75, 3))))
    tx = train_step.make_optimizer(shapes["params"], learning_rate=1e-3, b1=0.9, b2=0.999,
                                   eps=1e-8, freeze_stem=True)
    state = jax.eval_shape(lambda v: train_step.create_train_state(v, tx, plateau.init_state()), shapes)
    out = []
    for n in (8, 1):
        mesh = make_mesh(jax.devices()[:n])

        def arg(a, spec=jax.P(), mesh=mesh):
            return jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=jax.NamedSharding(mesh, spec))

        def shaped(shape, dtype, spec=jax.P(), mesh=mesh):
            return jax.ShapeDtypeStruct(shape, dtype, sharding=jax.NamedSharding(mesh, spec))

        rep_state = jax.tree.map(arg, state)
        images, labels = shaped((32, 80, 80, 3), jnp.uint8), shaped((32,), jnp.int32)
        step = train_step.make_train_step(model, tx, mesh, image_size=75, max_rotation=5.0, seed=0)
        for k in (1, 3):
            idx = shaped((k, 2 * n), jnp.int32, jax.P(None, DATA))
            out.append(describe(f"step n={n} k={k}", step, rep_state, images, labels, idx))
        # data_placement host/stream: the rows themselves, through the same step code.
        gathered = train_step.make_train_step(model, tx, mesh, image_size=75, max_rotation=5.0, seed=0,
                                              gathered=True)
        rows = shaped((3, 2 * n, 80, 80, 3), jnp.uint8, jax.P(None, DATA))
        row_labels = shaped((3, 2 * n), jnp.int32, jax.P(None, DATA))
        out.append(describe(f"gathered n={n} k=3", gathered, rep_state, rows, row_labels))
        variables = jax.tree.map(arg, {"params": shapes["params"], "batch_stats": shapes["batch_stats"]})
        batch = shaped((2 * n, 80, 80, 3), jnp.uint8, jax.P(DATA))
        out.append(describe(f"eval n={n}", make_eval_forward(model, 75, mesh), variables, batch))
    print(json.dumps(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
