"""One process of a data-parallel gradient computation: loss and gradients of one global batch
of 8, each process feeding its share, for tests/test_distributed.py::test_two_processes_equal_one
(run once alone and as both processes of a two-process cluster; the results must agree).

Usage: python -m tests.programs.distributed_worker OUT.npz
(the cluster, if any, comes from JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID;
process 0 writes OUT.npz).

Its own interpreter: each process of a cluster is one, and `jax.distributed.initialize` can
run only once per process. In float64 for the reason given in test_train_step.py.
"""

import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from hsnet_jax.models import HSNet
from hsnet_jax.runtime import distributed
from hsnet_jax.runtime.devices import DATA, make_mesh, replicate
from hsnet_jax.training import plateau, train_step


def main(out: str) -> None:
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    distributed.initialize_distributed(ml_collections.ConfigDict({"distributed": "auto"}))
    mesh = make_mesh()
    model = HSNet(7, dtype=jnp.float64, bn_axis_name=DATA)
    variables = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, 75, 75, 3))))()
    tx = train_step.make_optimizer(variables["params"], learning_rate=1e-3, b1=0.9, b2=0.999,
                                   eps=1e-8, freeze_stem=False)
    state = replicate(mesh, train_step.create_train_state(
        jax.tree.map(np.asarray, variables), tx, plateau.init_state()))
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (12, 80, 80, 3), dtype=np.uint8)
    labels = rng.integers(0, 7, 12).astype(np.int32)
    order = rng.permutation(12)[:8].astype(np.int32)  # the global batch
    share = 8 // jax.process_count()
    local = order[jax.process_index() * share:(jax.process_index() + 1) * share]
    idx = jax.make_array_from_process_local_data(jax.NamedSharding(mesh, jax.P(DATA)), local, (8,))
    fn = train_step.make_gradient_fn(model, mesh, image_size=75, max_rotation=5.0, seed=1)
    loss, grads, _ = fn(state, *replicate(mesh, (images, labels)), idx)
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(grads)}
    if jax.process_index() == 0:
        np.savez(out, loss=np.asarray(loss), devices=jax.device_count(), **flat)


if __name__ == "__main__":
    main(*sys.argv[1:])
