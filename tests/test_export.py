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

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_step_and_evaluation_lower_for_cuda_and_tpu():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    run = subprocess.run([sys.executable, "-m", "tests.programs.export_step"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
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
