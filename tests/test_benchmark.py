"""The benchmark command times the trainer's own step and needs neither TFDS nor torch."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_benchmark_reports_the_train_step_without_tfds_or_torch():
    out = subprocess.run([sys.executable, "-m", "tests.programs.benchmark_run"], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy_imports"] == []
    assert result["device_kind"] and result["device_count"] >= 1
    assert result["timed_steps"] == 2 and result["batch_size"] == 2
    assert result["train_img_per_s"] > 0 and result["eval_img_per_s"] > 0
    assert result["bare_img_per_s"] > 0  # the bare step's rate, measured in the same run
    assert result["peak_device_bytes"] == "not reported by this backend"  # XLA:CPU keeps no count
    # XLA's count for one training step at 75 px: HSNet's forward is ~0.27 GFLOP per image there,
    # and a training step costs about three forwards.
    assert 0.3 < result["train_gflop_per_image"] < 3.0
    assert result["epoch_train_images"] == 4 and result["epoch_val_images"] == 3
    assert result["schedule_minutes"] == pytest.approx(10 * result["epoch_seconds"] / 60, abs=0.006)


def test_benchmark_rejects_a_batch_the_devices_cannot_share():
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.step", "--batch_size=3", "--image_size=75"],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    assert out.returncode == 2
    assert "not divisible by the 2 devices" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.slow
def test_gpu_script_smoke_mode_runs_every_command(tmp_path):
    """`SMOKE=1 bash benchmarks/gpu.sh` runs the prepared GPU script's every command at tiny
    sizes on this CPU, so the script cannot call a flag or a file that no longer exists."""
    env = dict(os.environ, SMOKE="1", PYTHON=sys.executable, JAX_PLATFORMS="cpu")
    out = subprocess.run(["bash", "benchmarks/gpu.sh", str(tmp_path)], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + (tmp_path / "stderr.log").read_text())[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "benchmark.jsonl").read_text().splitlines()]
    jax_rows = [r for r in rows if "bare_img_per_s" in r]
    torch_rows = [r for r in rows if r.get("framework") == "pytorch-eager"]
    assert len(jax_rows) == 2 and len(torch_rows) == 2, rows
    assert all(r["ktl"] and r["train_img_per_s"] > 0 and r["bare_img_per_s"] > 0 for r in jax_rows)
    assert jax_rows[-1]["epoch_train_images"] == 4
    assert {r["precision"] for r in torch_rows} == {"float32 (TF32 on)", "bf16 autocast + channels_last"}
    assert "jax" in (tmp_path / "gpu.txt").read_text()


_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_compare_torch_times_the_same_frozen_stem_network_in_pytorch():
    """`--compare_torch` builds PyTorch's HSNet with the same parameters and the same frozen
    stem (Adam sees exactly the parameters our step trains), trains it, and reports both sides'
    medians and ratios, train and inference."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.step", "--batch_size=2", "--image_size=75", "--source_size=80",
         "--dtype=float32", "--ktl", "--steps=2", "--warmup=1", "--eval_batch_size=2", "--compare_torch"],
        cwd=_ROOT, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["params"] == result["torch_params"] == 13_662_808
    assert result["trainable_params"] == result["torch_trainable_params"] == 13_662_808 - 615_552
    assert len(result["torch_losses"]) == 3 and all(0 < v < 20 for v in result["torch_losses"])
    assert result["torch_threads"] >= 1 and result["torch_version"]
    for ours, theirs, ratio in (("bare_img_per_s", "torch_train_img_per_s", "bare_over_torch"),
                                ("infer_img_per_s", "torch_infer_img_per_s", "infer_over_torch")):
        assert result[ours] > 0 and result[theirs] > 0
        # The rates are printed to 0.1 img/s, the ratio of the unrounded medians to 0.001.
        low = (result[ours] - 0.05) / (result[theirs] + 0.05)
        high = (result[ours] + 0.05) / max(result[theirs] - 0.05, 1e-9)
        assert low - 0.0005 <= result[ratio] <= high + 0.0005, (ratio, result)


def test_compare_torch_refuses_another_precision():
    out = subprocess.run([sys.executable, "-m", "benchmarks.step", "--dtype=bfloat16", "--compare_torch"],
                         cwd=_ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == (
        "error: --compare_torch times PyTorch in float32; use --dtype float32, not bfloat16")
