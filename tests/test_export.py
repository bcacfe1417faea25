"""The train step and the evaluation program lower for CUDA and TPU on this CPU machine.

`jax.export` lowers a jitted function to StableHLO for platforms that are not present and
refuses custom calls that are not stable across platforms (a CPU-only LAPACK call, a host
callback), so a construct that only XLA:CPU can run fails here rather than on the first GPU
run. The mesh is 8 forced CPU devices (the collectives of data parallelism: BatchNorm's and
the gradients' pmean) and 1 device (where the step leaves the collectives out). What this
cannot cover: compiling with the CUDA/TPU compilers (unsupported layouts, memory), numerics
on those chips, and the host side (device_put, multi-process arrays, jax.distributed).
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]

_EXPORT = textwrap.dedent("""
    import json, re
    import jax, jax.numpy as jnp
    from hsnet_jax import plateau, train_step
    from hsnet_jax.models import HSNet
    assert jax.device_count() == 8
    model = HSNet(7, freeze_stem=True, dtype=jnp.bfloat16, bn_axis_name=train_step.DATA)
    shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 75, 75, 3))))
    tx = train_step.make_optimizer(shapes["params"], learning_rate=1e-3, b1=0.9, b2=0.999,
                                   eps=1e-8, freeze_stem=True)
    state = jax.eval_shape(lambda v: train_step.create_train_state(v, tx, plateau.init_state()), shapes)
    out = []

    def record(name, fn, *args):
        exported = jax.export.export(fn, platforms=("cuda", "tpu"))(*args)
        text = exported.mlir_module()
        out.append(dict(name=name, platforms=list(exported.platforms), devices=exported.nr_devices,
                        all_reduce=text.count("all_reduce"), loops=text.count("stablehlo.while"),
                        custom_calls=sorted(set(re.findall(r"custom_call @(\\w+)", text)))))

    for n in (8, 1):
        mesh = train_step.make_mesh(jax.devices()[:n])
        at = lambda spec: jax.NamedSharding(mesh, spec)
        arg = lambda a, spec=jax.P(): jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=at(spec))
        rep_state = jax.tree.map(arg, state)
        images = jax.ShapeDtypeStruct((32, 80, 80, 3), jnp.uint8, sharding=at(jax.P()))
        labels = jax.ShapeDtypeStruct((32,), jnp.int32, sharding=at(jax.P()))
        step = train_step.make_train_step(model, tx, mesh, image_size=75, max_rotation=5.0, seed=0)
        for k in (1, 3):
            idx = jax.ShapeDtypeStruct((k, 2 * n), jnp.int32, sharding=at(jax.P(None, train_step.DATA)))
            record(f"step n={n} k={k}", step, rep_state, images, labels, idx)
        # data_placement host/stream: the rows themselves, through the same step code.
        gathered = train_step.make_train_step(model, tx, mesh, image_size=75, max_rotation=5.0, seed=0,
                                              gathered=True)
        rows = jax.ShapeDtypeStruct((3, 2 * n, 80, 80, 3), jnp.uint8, sharding=at(jax.P(None, train_step.DATA)))
        row_labels = jax.ShapeDtypeStruct((3, 2 * n), jnp.int32, sharding=at(jax.P(None, train_step.DATA)))
        record(f"gathered n={n} k=3", gathered, rep_state, rows, row_labels)
        variables = jax.tree.map(arg, {"params": shapes["params"], "batch_stats": shapes["batch_stats"]})
        batch = jax.ShapeDtypeStruct((2 * n, 80, 80, 3), jnp.uint8, sharding=at(jax.P(train_step.DATA)))
        record(f"eval n={n}", train_step.make_eval_forward(model, 75, mesh), variables, batch)
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_step_and_evaluation_lower_for_cuda_and_tpu():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-c", _EXPORT], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    got = {r["name"]: r for r in json.loads(run.stdout.strip().splitlines()[-1])}
    assert sorted(got) == sorted(f"{what} n={n}{k}" for n in (8, 1)
                                 for what, k in (("step", " k=1"), ("step", " k=3"), ("gathered", " k=3"),
                                                 ("eval", "")))
    for r in got.values():
        assert r["platforms"] == ["cuda", "tpu"] and r["custom_calls"] == [], r
    assert got["step n=8 k=1"]["devices"] == 8 and got["step n=1 k=1"]["devices"] == 1
    # Data parallelism is in the program: BatchNorm's statistics and the gradients are averaged.
    assert got["step n=8 k=1"]["all_reduce"] > 10
    # One device: the step has no collective at all (each would only copy its operand).
    assert got["step n=1 k=1"]["all_reduce"] == 0 and got["step n=1 k=3"]["all_reduce"] == 0
    # The gathered-rows step (data_placement host/stream) follows the same rules.
    assert got["gathered n=8 k=3"]["all_reduce"] == got["step n=8 k=3"]["all_reduce"]
    assert got["gathered n=1 k=3"]["all_reduce"] == 0
    # Several steps per dispatch stay one loop on accelerators (CPU unrolls them); one step has none.
    for n in (8, 1):
        assert got[f"step n={n} k=1"]["loops"] == 0 and got[f"step n={n} k=3"]["loops"] == 1
        assert got[f"gathered n={n} k=3"]["loops"] == 1
    assert got["eval n=8"]["all_reduce"] == 0  # inference BatchNorm uses the running statistics
