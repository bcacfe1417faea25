"""Training runs (`python -m hsnet_jax.train`) in each data placement end with the same
weights, bit for bit, on 8 simulated devices: `device` (the resident split, indexed on the
devices) and `stream` (rows read on the host and put on the devices by the feeder that `host`
shares, with the rows from memory). One device and resuming after SIGTERM / SIGKILL, from
host to stream, are in test_train.py; two processes (`stream` against one process's `device`,
bit for bit; `host` killed and resumed) in test_distributed.py."""

import os
import sys

import pytest
from train_runs import assert_same_run, run


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLACEMENTS = ("device", "stream")


def _command(workdir, data_dir, placement, steps_per_dispatch, batch_size=8):
    """One epoch of two steps."""
    return [sys.executable, "-m", "hsnet_jax.train", "--config", "configs/demo.py", "--workdir", str(workdir),
            "--config.dataset=synthetic/small", f"--config.data_dir={data_dir}",
            f"--config.max_train_examples={2 * batch_size}", "--config.max_eval_examples=8",
            f"--config.batch_size={batch_size}",
            "--config.num_epochs=1", f"--config.steps_per_dispatch={steps_per_dispatch}",
            "--config.eval_batch_size=16",
            f"--config.data_placement={placement}"]


@pytest.mark.slow
def test_placements_equal_on_8_devices(tmp_path, env, data_dir):
    env = dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    runs = {p: tmp_path / p for p in PLACEMENTS}
    for p, workdir in runs.items():
        # batch 16: BatchNorm needs at least 2 examples on each of the 8 devices.
        result = run(_command(workdir, data_dir, p, 1, batch_size=16), env)
        assert result.returncode == 0, result.stderr[-3000:]
        assert f"data placement: {p} (config.data_placement)" in result.stderr
    assert_same_run(runs["stream"], runs["device"])  # weights bit for bit, the same metrics


@pytest.mark.slow
def test_placement_benchmark_reports_each_placement_and_equal_weights(data_dir):
    from benchmarks import placements
    from configs import demo

    config = demo.get_config()
    config.update(dataset="synthetic/small", data_dir=data_dir)
    result = placements.measure(config, steps=2, rounds=1)
    assert set(result["train_images_per_s"]) == {"device", "host", "stream"}
    assert all(v > 0 for v in result["train_images_per_s"].values())
    assert result["same_weights"] is True
