"""Checkpoints: real orbax round trips, the architecture check, the run config, clear errors."""

import glob
import json
import os
import shutil
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from hsnet_jax.runtime import checkpoint
from hsnet_jax.errors import HSNetError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
META = dict(epoch=3, num_classes=7, use_dib=True, use_fgal=True, class_names=list("abcdefg"))


def _variables(seed):
    rng = np.random.default_rng(seed)
    return {"params": {"stem": {"k": rng.normal(size=(3, 3)).astype(np.float32)},
                       "fgal": {"b": rng.normal(size=(7,)).astype(np.float32)}},
            "batch_stats": {"stem": {"mean": rng.normal(size=(3,)).astype(np.float32)}}}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("run"))
    latest = checkpoint.open_manager(workdir, "latest", keep=2)
    for step in (10, 20, 30):
        checkpoint.save(latest, step, _variables(step), dict(META, step=step),
                        train={"step": np.int32(step), "count": np.arange(3)})
    best = checkpoint.open_manager(workdir, "best")
    checkpoint.save(best, 20, _variables(20), dict(META, step=20))
    latest.wait_until_finished()
    best.wait_until_finished()
    return workdir


def test_restore_latest_and_best(workdir):
    for which, step in (("latest", 30), ("best", 20)):
        restored = checkpoint.restore_variables(workdir, which)
        assert set(restored) == {"params", "batch_stats"}
        expected = _variables(step)
        for collection in expected:
            for module, leaves in expected[collection].items():
                for name, value in leaves.items():
                    np.testing.assert_array_equal(np.asarray(restored[collection][module][name]), value)
        assert checkpoint.read_meta(workdir, which)["step"] == step


def test_only_the_last_few_are_kept(workdir):
    manager = checkpoint.open_manager(workdir, "latest", read_only=True)
    assert list(manager.all_steps()) == [20, 30]


def test_another_architecture_is_refused_by_name(workdir):
    with pytest.raises(HSNetError, match=r"num_classes: checkpoint 7, expected 8.*use_dib: checkpoint True, "
                                         r"expected False"):
        checkpoint.restore_variables(workdir, "best", expected={"num_classes": 8, "use_dib": False})
    assert checkpoint.restore_variables(workdir, "best", expected={"num_classes": 7, "use_dib": True})


def test_missing_checkpoints_and_bad_which(tmp_path):
    with pytest.raises(HSNetError, match="no latest checkpoint"):
        checkpoint.restore_variables(str(tmp_path), "latest")
    with pytest.raises(HSNetError, match="which must be one of latest, best"):
        checkpoint.restore_variables(str(tmp_path), "middle")


def test_run_config_round_trip_and_errors(tmp_path):
    config = ml_collections.ConfigDict({"dataset": "synthetic", "model": {"use_dib": False}})
    checkpoint.save_run_config(str(tmp_path), config)
    assert json.loads((tmp_path / "config.json").read_text())["model"] == {"use_dib": False}
    loaded = checkpoint.load_run_config(str(tmp_path))
    assert loaded.dataset == "synthetic" and loaded.model.use_dib is False
    with pytest.raises(HSNetError, match="no config.json"):
        checkpoint.load_run_config(str(tmp_path / "nothing"))
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(HSNetError, match="not valid JSON"):
        checkpoint.load_run_config(str(tmp_path))


def _run_config(**changes) -> ml_collections.ConfigDict:
    from hsnet_jax.config import base_config
    config = base_config("raf_db")
    for key, value in changes.items():
        node, _, leaf = key.rpartition(".")
        (config[node] if node else config)[leaf] = value
    return config


CLASSES = ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]


def test_a_resume_into_another_run_is_refused_naming_both_values(tmp_path, monkeypatch):
    meta = json.loads(json.dumps(dict(run=checkpoint.run_identity(_run_config(), CLASSES))))  # as stored
    where = str(tmp_path)
    checkpoint.check_same_run(meta, checkpoint.run_identity(_run_config(num_epochs=900), CLASSES), where)
    stem = str(tmp_path / "stem")
    cases = [
        (_run_config(dataset="ferg_db"), CLASSES, "dataset: checkpoint 'raf_db', this run 'ferg_db'"),
        (_run_config(), CLASSES[::-1], "class_names: checkpoint ['surprise'"),
        (_run_config(image_size=112), CLASSES, "image_size: checkpoint 224, this run 112"),
        (_run_config(**{"ktl.stem_checkpoint": stem}), CLASSES,
         f"ktl_stem_checkpoint: checkpoint '', this run '{stem}'"),
        (_run_config(**{"model.use_fgal": False}), CLASSES, "model.use_fgal: checkpoint True, this run False"),
        (_run_config(class_balance="sampler"), CLASSES, "class_balance: checkpoint 'none', this run 'sampler'"),
    ]
    for config, classes, message in cases:
        with pytest.raises(HSNetError) as e:
            checkpoint.check_same_run(meta, checkpoint.run_identity(config, classes), where)
        assert message in str(e.value) and where in str(e.value) and "\n" not in str(e.value)
    # A checkpoint from before class_balance was recorded trained without it.
    before = json.loads(json.dumps(meta))
    del before["run"]["class_balance"]
    checkpoint.check_same_run(before, checkpoint.run_identity(_run_config(), CLASSES), where)
    with pytest.raises(HSNetError, match="class_balance: checkpoint 'none', this run 'loss'"):
        checkpoint.check_same_run(before, checkpoint.run_identity(_run_config(class_balance="loss"), CLASSES), where)
    # A model option the checkpoint predates is compared too (the whole config.model is).
    config = _run_config()
    config.model.fgal_standardize = False
    older = json.loads(json.dumps(meta))
    del older["run"]["model"]["fgal_standardize"]  # as written before the option existed
    with pytest.raises(HSNetError, match="model.fgal_standardize: checkpoint None, this run False"):
        checkpoint.check_same_run(older, checkpoint.run_identity(config, CLASSES), where)
    with pytest.raises(HSNetError, match="model.fgal_standardize: checkpoint True, this run False"):
        checkpoint.check_same_run(meta, checkpoint.run_identity(config, CLASSES), where)
    # Another stem checkpoint is another run; the same one given by a relative path is not.
    ktl = json.loads(json.dumps(dict(run=checkpoint.run_identity(_run_config(**{"ktl.stem_checkpoint": stem}),
                                                                 CLASSES))))
    with pytest.raises(HSNetError, match="ktl_stem_checkpoint: checkpoint '.*stem', this run '.*other'"):
        checkpoint.check_same_run(ktl, checkpoint.run_identity(
            _run_config(**{"ktl.stem_checkpoint": str(tmp_path / "other")}), CLASSES), where)
    monkeypatch.chdir(tmp_path)
    checkpoint.check_same_run(ktl, checkpoint.run_identity(_run_config(**{"ktl.stem_checkpoint": "stem"}),
                                                           CLASSES), where)


def test_a_checkpoint_without_a_run_record_is_refused_in_one_line(tmp_path):
    old = dict(epoch=3, num_classes=7, use_dib=True, use_fgal=True, dataset="raf_db")
    with pytest.raises(HSNetError, match="earlier hsnet-jax .* cannot be resumed; use another --workdir"):
        checkpoint.check_same_run(old, checkpoint.run_identity(_run_config(), CLASSES), str(tmp_path))


def test_a_damaged_checkpoint_is_named_and_moved_aside(workdir, tmp_path):
    run = str(tmp_path / "run")
    shutil.copytree(workdir, run)
    for path in glob.glob(os.path.join(run, "checkpoints", "latest", "30", "**", "d", "*"), recursive=True):
        os.truncate(path, 8)  # what a crashed copy leaves
    with pytest.raises(checkpoint.DamagedCheckpointError,
                       match=rf"^checkpoint {run}/checkpoints/latest/30 cannot be read \(.+\)$"):
        checkpoint.restore_variables(run, "latest")
    said = []
    abstract = lambda tree: tree  # noqa: E731 (numpy trees restore as themselves)
    manager, step, (variables, train, meta) = checkpoint.restore_newest_intact(
        run, checkpoint.open_manager(run, "latest", keep=2), 2, abstract(_variables(20)),
        abstract({"step": np.asarray(20, np.int32), "count": np.arange(3)}), said.append)
    assert step == 20 and meta["step"] == 20 and manager.all_steps() == [20]
    np.testing.assert_array_equal(variables["params"]["stem"]["k"], _variables(20)["params"]["stem"]["k"])
    assert len(said) == 1 and said[0].startswith(f"warning: checkpoint {run}/checkpoints/latest/30 cannot be read")
    moved = glob.glob(os.path.join(run, "checkpoints", "damaged", "latest-30-*"))
    assert len(moved) == 1 and moved[0] in said[0]


def test_a_damaged_checkpoint_restored_again_and_again_prints_one_line_each(tmp_path):
    """Each failed restore: its one-line error, nothing else. Without check_readable (orbax
    reading the damaged files itself) the reads orbax leaves in flight print hundreds of
    tracebacks here ("Event loop is closed" from TensorStore's threads), in every run."""
    attempts = 10
    result = subprocess.run([sys.executable, "-m", "tests.programs.failed_restores", str(tmp_path), str(attempts)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, JAX_PLATFORMS="cpu"))
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == attempts and all(
        line.startswith(f"checkpoint {tmp_path}/checkpoints/latest/1 cannot be read (") for line in lines), \
        f"{len(lines)} lines: {result.stderr[-3000:]}"
