"""Several hosts: two CPU processes (gloo collectives, coordinator on 127.0.0.1) each feeding
half of a global batch give the loss and gradients of one process that sees all of it."""

import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# float64 for the reason given in test_train_step.py: the claim is the same function, and
# float32 rounding differs with the per-device batch shape.
WORKER = textwrap.dedent("""
    import sys
    import jax, jax.numpy as jnp, ml_collections, numpy as np
    jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    from hsnet_jax import plateau, train, train_step
    from hsnet_jax.models import HSNet

    out = sys.argv[1]
    train.initialize_distributed(ml_collections.ConfigDict({"distributed": "auto"}))
    mesh = train_step.make_mesh()
    model = HSNet(7, dtype=jnp.float64, bn_axis_name=train_step.DATA)
    variables = jax.jit(lambda: model.init(jax.random.key(0), jnp.zeros((1, 75, 75, 3))))()
    tx = train_step.make_optimizer(variables["params"], learning_rate=1e-3, b1=0.9, b2=0.999,
                                   eps=1e-8, freeze_stem=False)
    state = train_step.replicate(mesh, train_step.create_train_state(
        jax.tree.map(np.asarray, variables), tx, plateau.init_state()))
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (12, 80, 80, 3), dtype=np.uint8)
    labels = rng.integers(0, 7, 12).astype(np.int32)
    order = rng.permutation(12)[:8].astype(np.int32)  # the global batch
    share = 8 // jax.process_count()
    local = order[jax.process_index() * share:(jax.process_index() + 1) * share]
    idx = jax.make_array_from_process_local_data(
        jax.NamedSharding(mesh, jax.P(train_step.DATA)), local, (8,))
    fn = train_step.make_gradient_fn(model, mesh, image_size=75, max_rotation=5.0, seed=1)
    loss, grads, _ = fn(state, *train_step.replicate(mesh, (images, labels)), idx)
    flat = {jax.tree_util.keystr(k): np.asarray(v) for k, v in jax.tree_util.tree_leaves_with_path(grads)}
    if jax.process_index() == 0:
        np.savez(out, loss=np.asarray(loss), devices=jax.device_count(), **flat)
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    base["JAX_PLATFORMS"] = "cpu"
    port = _free_port()
    cluster = dict(base, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
                   JAX_COORDINATOR_BIND_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2")
    runs = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "one.npz")], cwd=ROOT, env=base)]
    runs += [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path / "two.npz")], cwd=ROOT,
                              env=dict(cluster, JAX_PROCESS_ID=str(i))) for i in range(2)]
    try:
        codes = [p.wait(timeout=540) for p in runs]
    finally:
        for p in runs:
            if p.poll() is None:
                p.kill()
    assert codes == [0, 0, 0]
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert int(one["devices"]) == 1 and int(two["devices"]) == 2
    assert sorted(one.files) == sorted(two.files) and len(one.files) > 100
    for key in one.files:
        if key == "devices":
            continue
        a = one[key]
        np.testing.assert_allclose(two[key], a, rtol=1e-5, atol=1e-5 * np.abs(a).max(), err_msg=key)
