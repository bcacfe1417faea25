"""Computes the gradient step on 1 and on 8 devices and saves both, for
tests/test_train_step.py::test_eight_devices_equal_one_device.

Usage: python -m tests.programs.eight_devices OUT_DIR (writes one.npz, eight.npz, error.txt).

Its own interpreter: the 8 devices are XLA:CPU's forced host devices (XLA_FLAGS, set by the
test), which must be set before jax starts and must not leak into the test process. In
float64: the claim is that the step computes the same function on any device count; in float32
XLA:CPU's per-shape convolution blocking rounds differently (test_train_step.py says more).
"""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from hsnet_jax.errors import HSNetError
from hsnet_jax.models import HSNet
from hsnet_jax.runtime.devices import DATA, check_batch_size, make_mesh, replicate
from hsnet_jax.training import plateau, train_step


def main(out: str) -> None:
    jax.config.update("jax_enable_x64", True)
    assert jax.device_count() == 8, jax.devices()
    model = HSNet(7, dtype=jnp.float64, bn_axis_name=DATA)
    variables = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, 75, 75, 3))))()
    tx = train_step.make_optimizer(variables["params"], learning_rate=1e-3, b1=0.9, b2=0.999,
                                   eps=1e-8, freeze_stem=False)
    state0 = train_step.create_train_state(variables, tx, plateau.init_state())
    rng = np.random.default_rng(1)
    data = (rng.integers(0, 256, (24, 80, 80, 3), dtype=np.uint8), rng.integers(0, 7, 24).astype(np.int32))
    order = rng.permutation(24)[:16]
    results = {}
    for n in (1, 8):
        mesh = make_mesh(jax.devices()[:n])
        fn = train_step.make_gradient_fn(model, mesh, image_size=75, max_rotation=5.0, seed=3)
        state = replicate(mesh, state0)
        images, labels = replicate(mesh, data)
        idx = jax.device_put(order.astype(np.int32), jax.NamedSharding(mesh, jax.P(DATA)))
        loss, grads, stats = jax.tree.map(np.asarray, fn(state, images, labels, idx))
        results[n] = {"loss": loss,
                      **{"g/" + jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(grads)},
                      **{"bn/" + jax.tree_util.keystr(k): v for k, v in jax.tree_util.tree_leaves_with_path(stats)}}
    np.savez(os.path.join(out, "one.npz"), **results[1])
    np.savez(os.path.join(out, "eight.npz"), **results[8])
    try:
        check_batch_size(12, make_mesh())
    except HSNetError as e:
        with open(os.path.join(out, "error.txt"), "w") as f:
            f.write(str(e))


if __name__ == "__main__":
    main(*sys.argv[1:])
