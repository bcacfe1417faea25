"""Training runs (`python -m hsnet_jax.train`) in each data placement end with the same
weights, bit for bit, on 8 simulated devices. One device and resuming after SIGTERM / SIGKILL
in each placement are in test_train.py; two processes (`stream` against one process's
`device`, bit for bit; `host` killed and resumed) in test_distributed.py."""

import os
import subprocess
import sys

import numpy as np
import pytest


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEMENTS = ("device", "host", "stream")


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("JAX_", "XLA_"))}
    return dict(base, JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("xla_cache")),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """synthetic/small, prepared once (by `prepare`, as `make demo` would on first use)."""
    path = str(tmp_path_factory.mktemp("data"))
    subprocess.run([sys.executable, "-m", "hsnet_jax.data.prepare", "--dataset", "synthetic/small",
                    "--data_dir", path], cwd=ROOT, check=True, capture_output=True, timeout=600)
    return path


def _command(workdir, data_dir, placement, steps_per_dispatch, batch_size=8):
    """One epoch of two steps."""
    return [sys.executable, "-m", "hsnet_jax.train", "--config", "configs/demo.py", "--workdir", str(workdir),
            "--config.dataset=synthetic/small", f"--config.data_dir={data_dir}",
            f"--config.max_train_examples={2 * batch_size}", "--config.max_eval_examples=8",
            f"--config.batch_size={batch_size}",
            "--config.num_epochs=1", f"--config.steps_per_dispatch={steps_per_dispatch}",
            "--config.eval_batch_size=16",
            f"--config.data_placement={placement}"]


# orbax restores a checkpoint only onto the device count that saved it: read them back in one
# process with that many (simulated) devices.
RESTORE = """
import sys, numpy as np, jax
from hsnet_jax import checkpoint
for workdir, out in zip(sys.argv[1::2], sys.argv[2::2]):
    variables = checkpoint.restore_variables(workdir, "latest")
    np.savez(out, **{jax.tree_util.keystr(k): np.asarray(v)
                     for k, v in jax.tree_util.tree_leaves_with_path(variables)})
"""


def _assert_all_equal(runs, env, devices):
    outs = {p: str(w) + ".npz" for p, w in runs.items()}
    env = dict(env, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
    subprocess.run([sys.executable, "-c", RESTORE, *[a for p in runs for a in (str(runs[p]), outs[p])]],
                   cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    weights = {}
    for p, out in outs.items():
        with np.load(out) as f:
            weights[p] = dict(f)
    reference = weights["device"]
    assert len(reference) > 100
    for p in PLACEMENTS[1:]:
        assert weights[p].keys() == reference.keys()
        for key, value in reference.items():
            np.testing.assert_array_equal(weights[p][key], value, err_msg=f"{p}: {key}")


def _wait(procs, timeout=900):
    try:
        results = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err.decode()[-3000:]
    return [err.decode() for _, err in results]


@pytest.mark.slow
def test_placements_equal_on_8_devices(tmp_path, env, data_dir):
    env = dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    runs = {p: tmp_path / p for p in PLACEMENTS}
    for p, workdir in runs.items():
        # batch 16: BatchNorm needs at least 2 examples on each of the 8 devices.
        (err,) = _wait([subprocess.Popen(_command(workdir, data_dir, p, 1, batch_size=16), cwd=ROOT, env=env,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)])
        assert f"data placement: {p} (config.data_placement)" in err
    _assert_all_equal(runs, env, 8)


@pytest.mark.slow
def test_placement_benchmark_reports_each_placement_and_equal_weights(data_dir):
    from hsnet_jax import placement_benchmark

    result = placement_benchmark.main(["--config", os.path.join(ROOT, "configs", "demo.py"),
                                       "--dataset", "synthetic/small", "--data_dir", data_dir,
                                       "--steps", "2", "--rounds", "1"])
    assert set(result["train_images_per_s"]) == set(PLACEMENTS)
    assert all(v > 0 for v in result["train_images_per_s"].values())
    assert result["same_weights"] is True
