"""`hsnet_jax.training.train_and_evaluate` in-process, as a notebook or another trainer calls it:
what it returns (state, history, test report), a model and data handed in, a resumed call that
continues exactly, the non-finite stop, the profiler trace and the config checks. The runs
are tiny (32 training images, 75 px, batch 8) and share one compiled step through the module's
XLA cache; what needs a real process (signals, locks, several processes) stays in
test_train.py, test_interruptions.py and test_distributed.py."""

import json
import os
import shutil

import jax
import numpy as np
import pytest

from configs import demo
from hsnet_jax.errors import HSNetError
from hsnet_jax.models import create_model
from hsnet_jax.runtime import checkpoint
from hsnet_jax.runtime.devices import DATA
from hsnet_jax.training import load_data, train_and_evaluate
from train_runs import assert_same_run, metrics


def tiny_config(data_dir: str, **changes):
    config = demo.get_config()
    config.update({**dict(dataset="synthetic/small", data_dir=data_dir, max_train_examples=32, max_eval_examples=16,
                          batch_size=8, num_epochs=2, eval_batch_size=16), **changes})
    return config


@pytest.fixture(scope="module", autouse=True)
def compilation_cache(tmp_path_factory):
    """One persistent XLA cache for the module: the step compiles once for all its runs."""
    previous = {k: getattr(jax.config, k) for k in ("jax_compilation_cache_dir",
                                                    "jax_persistent_cache_min_compile_time_secs")}
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    yield
    for k, v in previous.items():
        jax.config.update(k, v)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir):
    """One finished two-epoch run and what the call returned."""
    workdir = str(tmp_path_factory.mktemp("loop"))
    return workdir, train_and_evaluate(tiny_config(data_dir), workdir)


@pytest.mark.slow
def test_the_loop_returns_its_state_history_and_report(finished):
    workdir, result = finished
    assert [r["epoch"] for r in result.history] == [0, 1]
    assert result.history == metrics(workdir)  # exactly what metrics.jsonl holds
    assert int(result.state.step) == 2 * 32 // 8
    with open(os.path.join(workdir, "eval", "test_metrics.json")) as f:
        assert result.report["accuracy"] == json.load(f)["accuracy"]
    assert np.sum(result.report["confusion_matrix"]) == 140  # synthetic/small's whole test split
    latest = checkpoint.restore_variables(workdir, "latest")
    for a, b in zip(jax.tree.leaves(latest["params"]), jax.tree.leaves(result.state.params), strict=True):
        np.testing.assert_array_equal(a, np.asarray(b))


@pytest.mark.slow
def test_a_resumed_call_continues_exactly(finished, tmp_path, data_dir):
    """One epoch, then the same call asked for two: the same weights and history as the run
    that went through."""
    workdir = str(tmp_path / "resumed")
    first = train_and_evaluate(tiny_config(data_dir, num_epochs=1), workdir, evaluate=False)
    assert first.report is None and [r["epoch"] for r in first.history] == [0]
    second = train_and_evaluate(tiny_config(data_dir), workdir, evaluate=False)
    assert [r["epoch"] for r in second.history] == [0, 1]
    assert_same_run(workdir, finished[0])


@pytest.mark.slow
def test_a_model_and_data_handed_in(tmp_path, data_dir):
    """A notebook's own split (the first 16 training images) and model (HSNet without FGAL)."""
    config = tiny_config(data_dir, num_epochs=1)
    train, val = load_data(config)
    model = create_model(config, len(train.class_names), bn_axis_name=DATA).clone(use_fgal=False)
    result = train_and_evaluate(config, str(tmp_path), data=(train.first(16), val), model=model)
    assert int(result.state.step) == 16 // 8
    assert "fgal" not in result.state.params
    assert checkpoint.read_meta(str(tmp_path), "latest")["use_fgal"] is False
    assert "gates" not in result.report  # evaluated with the model handed in, not the config's


@pytest.mark.slow
def test_a_non_finite_loss_stops_naming_the_step_and_keeps_the_checkpoint(finished, tmp_path, data_dir):
    workdir = str(tmp_path / "run")
    shutil.copytree(finished[0], workdir)
    last_good = checkpoint.open_manager(workdir, "latest", read_only=True).latest_step()
    config = tiny_config(data_dir, num_epochs=3)
    config.optimizer.learning_rate = 1e30
    with pytest.raises(HSNetError, match=r"non-finite training loss .* at epoch 3, step 2 of the epoch"):
        train_and_evaluate(config, workdir)
    assert checkpoint.open_manager(workdir, "latest", read_only=True).latest_step() == last_good
    assert len(metrics(workdir)) == 2


@pytest.mark.slow
def test_profile_steps_write_a_trace(tmp_path, data_dir):
    train_and_evaluate(tiny_config(data_dir, num_epochs=1), str(tmp_path), evaluate=False, profile_steps=(1, 3))
    traces = [f for _, _, files in os.walk(tmp_path / "profile") for f in files if f.endswith(".xplane.pb")]
    assert len(traces) == 1


@pytest.mark.parametrize("changes, message", [
    (dict(batch_size=0), "config.batch_size must be positive"),
    (dict(image_size=64), "at least 75"),
    (dict(batch_size=1), "config.batch_size must give each of the 1 devices at least 2 examples"),
    (dict(dataset="raf_db"), "python -m hsnet_jax.prepare --dataset raf_db"),
])
def test_bad_configs_are_one_line_errors_before_any_work(changes, message, tmp_path, data_dir):
    with pytest.raises(HSNetError) as e:
        train_and_evaluate(tiny_config(data_dir, **changes), str(tmp_path))
    assert message in str(e.value) and "\n" not in str(e.value)
    assert not os.path.exists(tmp_path / "checkpoints")
