"""The training CLI end to end on the generated set: outputs, exact resume after SIGTERM and
SIGKILL, reduce-on-plateau, and the one-line errors the command line adds (the loop itself,
its non-finite stop and config checks are tested in-process: tests/test_loop.py).

Runs are real subprocesses of `python -m hsnet_jax.train` on a tiny slice (48 training
images, 75 px, 3 epochs); they share a persistent XLA compilation cache so that only the
first one pays for compiling (the `env` and `data_dir` fixtures of conftest.py).
"""

import json
import os
import shutil
import signal
import subprocess

import numpy as np
import pytest

from hsnet_jax import train
from hsnet_jax.runtime import checkpoint
from hsnet_jax.config import check_config
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import create_model
from train_runs import ROOT, assert_same_run
from train_runs import command as _command
from train_runs import metrics as _metrics
from train_runs import run as _run
from train_runs import start_and_signal as _start_and_signal


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """This module's own data directory (overrides conftest's session one): its reference run
    must find the generated set missing and prepare it, whatever other modules ran first."""
    return str(tmp_path_factory.mktemp("train_data"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env, data_dir):
    """An uninterrupted run (it also prepares the generated set, which is missing at first),
    its stderr to a file and a progress line at every tenth of an epoch (not only each minute)."""
    workdir = tmp_path_factory.mktemp("reference")
    log = tmp_path_factory.mktemp("reference_log") / "stderr.log"
    result = _run(_command(workdir, data_dir), dict(env, HSNET_PROGRESS_SECONDS="0"), log=log)
    assert result.returncode == 0, result.stderr[-3000:]
    return str(workdir), result


@pytest.mark.slow
def test_end_to_end_outputs(reference):
    workdir, result = reference
    assert "preparing the generated dataset" in result.stderr
    config = checkpoint.load_run_config(workdir)
    assert config.dataset == "synthetic/small" and config.max_train_examples == 48
    records = _metrics(workdir)
    assert [r["epoch"] for r in records] == [0, 1, 2]
    for r in records:
        assert set(r) >= {"lr_scale", "train_loss", "train_accuracy", "val_loss", "val_accuracy",
                          "val_mean_accuracy", "images_per_s", "train_class_counts"}
        assert all(np.isfinite(v).all() for v in r.values())
        assert sum(r["train_class_counts"]) == 48  # 6 steps of 8
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    # Each record holds the rate its epoch trained with.
    assert [r["lr_scale"] for r in records] == pytest.approx([1.0, 1.0, 0.1])
    assert [r["learning_rate"] for r in records] == pytest.approx([3e-4, 3e-4, 3e-5])
    events = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(workdir, "tensorboard")) for f in fs]
    assert len(events) == 1 and b"val/accuracy" in open(events[0], "rb").read()
    report = json.load(open(os.path.join(workdir, "eval", "test_metrics.json")))
    assert set(report) >= {"accuracy", "mean_accuracy", "per_class", "confusion_matrix", "class_names"}
    assert np.sum(report["confusion_matrix"]) == 140  # the whole test split of synthetic/small
    for png in ("eval/test_confusion_matrix.png", "eval/test_examples.png", "eval/test_gates.png",
                "training_curves.png"):
        assert open(os.path.join(workdir, png), "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    meta = checkpoint.read_meta(workdir, "best")
    assert meta["metrics"]["val_accuracy"] == max(r["val_accuracy"] for r in records)
    assert checkpoint.read_meta(workdir, "latest")["epoch"] == 3  # the next epoch to run
    variables = checkpoint.restore_variables(workdir, "latest", expected={"num_classes": 7, "use_dib": True})
    assert set(variables) == {"params", "batch_stats"}
    assert "run directory" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_log_file_gets_plain_progress_lines(reference):
    """No carriage returns (no bar refreshes, TFDS's included) and at most one progress line per
    tenth of an epoch before each epoch's summary line."""
    err = reference[1].stderr
    assert "\r" not in err
    lines = err.splitlines()
    for epoch in (1, 2, 3):
        summary = next(i for i, line in enumerate(lines) if line.startswith(f"epoch {epoch}: train loss"))
        progress = [line for line in lines[:summary] if line.startswith(f"epoch {epoch}/3: ")]
        assert 1 <= len(progress) <= 10, progress
        assert progress[-1].startswith(f"epoch {epoch}/3: 100% (6/6 step), ") and "loss" in progress[-1]


# The caps make `auto` choose host memory or streaming from the array_record files; the
# reference ran on the device. Equal weights: the same numbers in every placement, resumed,
# even when the resumed run reads its rows another way than the stopped one.
CAPS = {"device": (), "host": ("--config.max_device_bytes=1",),
        "stream": ("--config.max_device_bytes=1", "--config.max_host_bytes=1")}


@pytest.mark.slow
@pytest.mark.parametrize("first, then", [("device", "device"), ("host", "stream")])
def test_sigterm_and_sigkill_then_resume_equal_an_uninterrupted_run(reference, tmp_path, env, data_dir, first, then):
    assert "data placement: device (auto: " in reference[1].stderr
    code, err = _start_and_signal(_command(tmp_path, data_dir, *CAPS[first]), env, "epoch 2/3", signal.SIGTERM)
    assert code == 143 and "SIGTERM: saved" in err and "Traceback" not in err, err[-3000:]
    assert f"data placement: {first} (auto: " in err
    command = _command(tmp_path, data_dir, *CAPS[then])
    code, err = _start_and_signal(command, env, "epoch 3/3", signal.SIGKILL)
    assert code == -signal.SIGKILL and "resuming" in err and f"data placement: {then} (auto: " in err
    assert len(_metrics(tmp_path)) < 3  # killed before the end
    result = _run(command, env)
    assert result.returncode == 0, result.stderr[-3000:]

    assert_same_run(tmp_path, reference[0])


@pytest.mark.slow
def test_bad_input_is_one_line_error(reference, tmp_path, env, data_dir):
    """What the command line adds to the loop's own checks (tests/test_loop.py): a misspelt
    override, a bad value through the flags, and resuming into another run."""
    # The refusals run at once, so each gets its own copy of the reference run (one trainer
    # per workdir: a shared copy would answer "in use by another training run" instead).
    for name in ("architecture", "ktl", "image_size"):
        shutil.copytree(reference[0], tmp_path / name, ignore=shutil.ignore_patterns("run.lock"))
    cases = {
        "misspelt": (_command(tmp_path / "a", data_dir, "--config.batchsize=4"), "batchsize"),
        "plateau": (_command(tmp_path / "f", data_dir, "--config.plateau.patience=-1"),
                    "error: config.plateau.patience must be >= 0"),
        # Resuming into another run (the reference's workdir) is refused, naming both values.
        "architecture": (_command(tmp_path / "architecture", data_dir, "--config.model.use_dib=False"),
                         "model.use_dib: checkpoint True, this run False"),
        "ktl": (_command(tmp_path / "ktl", data_dir, "--config.ktl.stem_checkpoint=/stems/vggface2"),
                "ktl_stem_checkpoint: checkpoint '', this run '/stems/vggface2'"),
        "image_size": (_command(tmp_path / "image_size", data_dir, "--config.image_size=80"),
                       "image_size: checkpoint 75, this run 80"),
    }
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True) for name, (cmd, _) in cases.items()}
    for name, proc in procs.items():
        _, err = proc.communicate(timeout=300)
        assert proc.returncode != 0, name
        assert cases[name][1] in err and "Traceback" not in err, (name, err[-2000:])


@pytest.mark.slow
def test_balanced_sampler_resumes_exactly_after_sigkill_and_test_scoring_changes_nothing(tmp_path, env, data_dir):
    """config.class_balance=sampler killed inside epoch 2 and resumed, scoring the test split
    every epoch, ends with the weights and records of an uninterrupted run that never scored it."""
    import jax

    from configs import demo
    from hsnet_jax.training import train_and_evaluate

    config = demo.get_config()
    config.update(dict(dataset="synthetic/small", data_dir=data_dir, max_train_examples=48, max_eval_examples=28,
                       batch_size=8, num_epochs=2, steps_per_dispatch=1, eval_batch_size=16, class_balance="sampler"))
    config.plateau.update(patience=0, threshold=0.99)
    workdir, reference = tmp_path / "run", str(tmp_path / "reference")
    command = _command(workdir, data_dir, "--config.num_epochs=2", "--config.class_balance=sampler",
                       "--config.report_test_each_epoch=True")
    # The killed process and the in-process runs share one XLA cache: the step compiles once.
    previous = {k: getattr(jax.config, k) for k in ("jax_compilation_cache_dir",
                                                    "jax_persistent_cache_min_compile_time_secs")}
    jax.config.update("jax_compilation_cache_dir", env["JAX_COMPILATION_CACHE_DIR"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    try:
        code, err = _start_and_signal(command, env, "epoch 2/2", signal.SIGKILL)
        assert code == -signal.SIGKILL and len(_metrics(workdir)) < 2, err[-3000:]
        train_and_evaluate(config, reference, evaluate=False)
        config.report_test_each_epoch = True
        train_and_evaluate(config, str(workdir), evaluate=False)
    finally:
        for k, v in previous.items():
            jax.config.update(k, v)
    records = _metrics(workdir)
    assert all("test_accuracy" in r and sum(r["train_class_counts"]) == 48 for r in records)
    for r in records:
        del r["test_accuracy"], r["test_mean_accuracy"]
    with open(workdir / "metrics.jsonl", "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    assert_same_run(workdir, reference)


def test_config_checks():
    from configs import demo, raf
    config = raf.get_config()
    assert (config.optimizer.learning_rate, config.plateau.patience, config.num_epochs, config.batch_size,
            config.image_size) == (0.01, 20, 500, 32, 224)
    check_config(config)
    check_config(demo.get_config())
    config.distributed = "sometimes"
    with pytest.raises(HSNetError, match="distributed must be auto, yes or no"):
        check_config(config)
    config = raf.get_config()
    config.batch_size = 2
    check_config(config)
    with pytest.raises(HSNetError, match=r"config.batch_size must give each of the 2 devices at least 2 examples"):
        check_config(config, num_devices=2)  # PyTorch refuses a training batch of one per BatchNorm
    config.plateau.threshold_mode = "relative"
    with pytest.raises(HSNetError, match="config.plateau.threshold_mode must be rel or abs"):
        check_config(config)
    assert create_model(raf.get_config(), 7).freeze_stem is False
    config = raf.get_config()
    config.ktl.stem_checkpoint = "weights/stem"
    assert create_model(config, 7).freeze_stem is True
    assert train.default_workdir("configs/raf.py") == os.path.join("workdirs", "raf")
    config = raf.get_config()
    config.class_balance = "oversample"
    with pytest.raises(HSNetError, match="class_balance must be one of none, sampler, loss"):
        check_config(config)


def test_the_summary_shows_the_best_epoch_on_test_beside_the_validation_selected_number():
    report = {"accuracy": 0.81, "mean_accuracy": 0.72}
    assert train.report_line(report) == "test accuracy 0.8100, mean accuracy 0.7200"
    report["best_epoch_on_test"] = {"epoch": 4, "accuracy": 0.84, "mean_accuracy": 0.75}
    assert train.report_line(report) == (
        "test accuracy 0.8100, mean accuracy 0.7200 (validation-selected); best epoch "
        "on test (as DAN/POSTER report): accuracy 0.8400, mean accuracy 0.7500 (epoch 5)")
